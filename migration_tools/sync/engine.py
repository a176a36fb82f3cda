"""A live sync from start to stop: checks, lease, copy, then following the change stream.

The order is the one mongosync and Atlas Live Migration use. The change stream is opened on
the source database and its starting point saved on the target *before* anything is copied;
then every collection is copied; then the events from that starting point are applied. A
document that changed during the copy is thereby corrected: the copy may hold any version of
it, and the events replay every change since the start.

Everything needed to continue is saved on the target (see :mod:`migration_tools.sync.state`)
after each batch of the copy and each applied batch of events, so a run killed at any moment
resumes where the saved state says, and since each write is idempotent, whatever was done
after the last save is simply done again.
"""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.core.management.base import CommandError
from pymongo.errors import OperationFailure

from migration_tools.dump import CollectionFiles, collection_metadata
from migration_tools.progress import human_bytes
from migration_tools.restore import BATCH_BYTES
from migration_tools.runs import (
    EXIT_CANNOT_RUN,
    EXIT_INTERRUPTED,
    EXIT_REFUSED,
    client_for,
    named_source,
    named_target,
    refuse,
    same_database,
    server_key,
)
from migration_tools.sync.apply import STOP_EVENTS, Applier, Pacer, RefreshSet, transaction_of
from migration_tools.sync.copy import (
    CollectionCopy,
    CopyInterrupted,
    build_indexes,
    copy_collection,
    copy_views,
    source_collections,
    source_size,
)
from migration_tools.sync.cutover import CutOver, CutOverInterrupted, NoGo
from migration_tools.sync.state import Lease, LeaseHeld, LeaseLost, SyncState
from migration_tools.sync.stream import (
    AWAIT_MS,
    CUTOVER_AWAIT_MS,
    CaughtUp,
    HistoryLost,
    ReaderFailed,
    StandaloneSource,
    StreamReader,
    check_replica_set,
    expanded_events_supported,
    history_is_lost,
    record_start,
)
from migration_tools.sync.verify_live import LiveVerifier
from studymaster.mongo import redact
from studymaster.tools_collections import is_data_collection

BATCH_EVENTS = 1000
DIFFERENCES_SHOWN = 20
HISTORY_CHECK_SECONDS = 10.0
INDEX_RETRY_SECONDS = 30.0
RATE_WINDOW_SECONDS = 10.0
NAMESPACE_NOT_FOUND = 26
AWAIT_SECONDS = AWAIT_MS / 1000
SAVE_SECONDS = 5.0


class SyncError(Exception):
    """A run that cannot go on (exit 2); the message says what to do.

    :func:`sync_run` turns it into the command's CommandError with ``exit_code``; the subclasses
    let callers of :class:`LiveSync` tell the cases apart.
    """

    exit_code = EXIT_CANNOT_RUN

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class SyncRefused(SyncError):
    """Refused (exit 1): the input, the target's content, or a NO-GO at cut-over."""

    exit_code = EXIT_REFUSED


class SyncInterrupted(SyncError):
    """Stopped by a signal before the copy was complete (exit 130)."""

    exit_code = EXIT_INTERRUPTED


@dataclass
class SyncOptions:
    source_uri: str
    target_uri: str
    source_db: str
    target_db: str
    source_uri_name: str = "--source-uri"  # where each URI came from, for the messages
    target_uri_name: str = "--target-uri"
    restart: bool = False
    max_ops_per_second: float = 80.0
    quota_mb: float = 512.0
    batch_bytes: int = BATCH_BYTES
    # None follows until stopped; "caught_up" returns once every event up to now is applied;
    # "verified" once, in addition, the live verification has settled every document.
    stop_when: str | None = None
    cutover: bool = False  # catch up, freeze the source, drain, prove: GO or NO-GO (cutover.py)
    catch_up_timeout: float = 300.0


@dataclass
class SyncFigures:
    """The figures of one run (printed at the end, and written by ``--json``)."""

    source: str
    target: str
    source_db: str
    target_db: str
    phase: str = "starting"
    stopped_by: str = ""
    seconds: float = 0.0
    copy: dict = field(default_factory=dict)
    events_applied: int = 0
    events_by_kind: dict = field(default_factory=dict)
    events_per_second: float = 0.0
    lag_seconds: float = 0.0
    lag_events: int = 0
    target_operations: int = 0
    updates_without_post_image: int = 0
    documents_refreshed: int = 0
    refresh_pending: int = 0
    indexes_pending: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    verification: dict = field(default_factory=dict)
    cutover: dict = field(default_factory=dict)  # result (GO, NO-GO), freeze_seconds, what was checked

    def to_dict(self) -> dict:
        return asdict(self)

    def audit_counts(self) -> dict:
        counts = {"copy": self.copy, "events": self.events_by_kind}
        if self.cutover:
            counts["cutover"] = {key: value for key, value in self.cutover.items() if key != "at"}
        return counts

    def opening_line(self) -> str:
        return f"sync_atlas: from {self.source} database {self.source_db} to {self.target} database {self.target_db}"


# -- messages ------------------------------------------------------------------------------------
def standalone_message(uri: str) -> str:
    return (
        f"standalone source: {redact(uri)} is a standalone server: it keeps no oplog, so there is no "
        "change stream to follow. Either restart it as a one-node replica set: stop mongod, start it "
        "again with --replSet rs0 (or replication.replSetName: rs0 in mongod.conf), run rs.initiate() "
        "once in mongosh, then run sync_atlas again; or use the freeze-based runbook instead "
        "(export_local, import_atlas, verify_migration in docs/migration.md)."
    )


HISTORY_LOST_MESSAGE = (
    "history lost: the point this sync must resume from is no longer in the source's oplog "
    "(ChangeStreamHistoryLost, code 286), so the changes made since cannot be replayed and a fresh "
    "copy is needed. Run the same command with --restart --yes: it clears the target's copy state "
    "and copies again, skipping documents already identical. A larger oplog (replSetResizeOplog) "
    "gives a long copy or a stopped sync more time."
)


def source_changed_message(event) -> str:
    kind = event["operationType"]
    ns = event.get("ns") or {}
    what = {
        "drop": f"the collection {ns.get('coll')} was dropped on the source",
        "rename": f"the collection {ns.get('coll')} was renamed to {(event.get('to') or {}).get('coll')} on the source",
        "dropDatabase": f"the source database {ns.get('db')} was dropped",
        "invalidate": "the source's change stream was invalidated (its database was dropped or renamed)",
    }[kind]
    return (
        f"source changed: {what}. Every change before it is applied on the target, nothing after "
        "it. A live sync does not carry a drop or a rename over: run the same command with "
        "--restart --yes to copy the source afresh as it is now (what the target holds of the "
        "collection stays there until you drop it yourself)."
    )


def go_message(options: SyncOptions, cutover: dict) -> str:
    """GO: the freeze time and the exact next steps, rollback included."""
    database = (
        f" and MONGODB_DB_NAME to {options.target_db}" if options.target_db != options.source_db else ""
    )
    return "\n".join(
        [
            f"GO: the target database {options.target_db} holds the source's data, verified; freeze "
            f"{cutover['freeze_seconds']:.1f}s (from the source's flag set to hard until this GO).",
            f"  checked after the drain: {cutover['events_since_freeze']} events applied since the freeze, "
            f"{cutover['collections']} collections' counts, indexes and options, the invariants of "
            f"{cutover['users_checked']} users touched since the full pass. The target's maintenance flag is "
            "on, so the application restarted on it still refuses writes until step 3.",
            "Next steps:",
            f"  1. Set MONGODB_URI to the target (the URI of {options.target_uri_name}){database}.",
            "  2. Restart the application (every process).",
            "  3. Check it, then run: python manage.py maintenance off   (it now acts on the target)",
            "The source stays frozen (maintenance hard), unchanged since the freeze. To roll back: point "
            "MONGODB_URI at the source again, restart, and run manage.py maintenance off against it; writes "
            "made on the target after the switch are then not on the source.",
        ]
    )


def no_go_message(no_go: NoGo, cut: CutOver, count: int) -> str:
    """NO-GO: why (the first differences in the line too), and where the source's flag is."""
    shown = "; ".join(no_go.differences[:3]) + ("; ..." if count > 3 else "")
    why = f"{no_go.summary} ({shown})" if shown else no_go.summary
    if not no_go.frozen:
        return f"NO-GO: {why}."
    if cut.thawed is None:
        flag = "the source's maintenance flag could NOT be set back (see the warning above)"
    else:
        flag = f"the source's maintenance flag is back {cut.thawed}, as before the freeze"
    return (
        f"NO-GO: {why}. Nothing was switched: {flag}, and the application goes on with the source. "
        "The sync state is saved: run sync_atlas to follow again, and --cutover once the cause is fixed."
    )


# -- the run -------------------------------------------------------------------------------------
class LiveSync:
    """One run of ``sync_atlas``: :meth:`run` does the checks, the copy and the following."""

    def __init__(
        self,
        options: SyncOptions,
        *,
        source_client=None,
        target_client=None,
        stop: threading.Event | None = None,
        say: Callable[[str], object] = print,
        status: Callable[[str], object] = lambda line: None,
    ) -> None:
        self.options = options
        self.source_client, self.target_client = source_client, target_client
        self.stop = stop or threading.Event()
        self.say, self.status = say, status
        self.pacer = Pacer(options.max_ops_per_second)
        self.figures = SyncFigures(
            source=redact(options.source_uri),
            target=redact(options.target_uri),
            source_db=options.source_db,
            target_db=options.target_db,
        )
        self.lease: Lease | None = None
        self.state: SyncState | None = None
        self.refresh = RefreshSet()
        self.verifier: LiveVerifier | None = None
        self.total_documents = 0  # the source's estimate, from the pre-flight
        self.started = time.monotonic()
        self._history_checked = time.monotonic()

    def run(self) -> SyncFigures:
        """Copy if needed, then follow; raises SyncError (its exit_code says which).

        Clients not given are made from the URIs (client_for: a bad URI or an unreachable
        server is exit code 2), and closed at the end.
        """
        self.refuse_same_database()
        owned = []
        if self.source_client is None:
            self.source_client = client_for(self.options.source_uri, name=self.options.source_uri_name)
            owned.append(self.source_client)
        if self.target_client is None:
            self.target_client = client_for(self.options.target_uri, name=self.options.target_uri_name)
            owned.append(self.target_client)
        self.source_db = self.source_client[self.options.source_db]
        self.target_db = self.target_client[self.options.target_db]
        try:
            return self._run()
        finally:
            for client in owned:
                client.close()

    def refuse_same_database(self) -> None:
        """SyncRefused when the source and the target are the same database on the same server."""
        options = self.options
        if same_database(options.source_uri, options.source_db, options.target_uri, options.target_db):
            raise SyncRefused(
                f"refused: the source and the target are the same server and database "
                f"({', '.join(sorted(server_key(options.source_uri)))}, {options.source_db}); name the Atlas "
                "cluster with --target-uri or ATLAS_MONGODB_URI."
            )

    def _run(self) -> SyncFigures:
        try:
            check_replica_set(self.source_client)
        except StandaloneSource:
            raise SyncError(standalone_message(self.options.source_uri)) from None
        self.expanded = expanded_events_supported(self.source_client)
        self.lease = Lease(self.target_db)
        try:
            self.lease.acquire()
        except LeaseHeld as held:
            raise SyncError(
                f"already running: another sync_atlas run holds the target database "
                f"{self.options.target_db}: {held}. Stop that run first (Ctrl-C or SIGTERM)."
            ) from None
        if self.lease.taken_over:
            self.say(
                f"Took over from process {self.lease.taken_over.get('pid')} on this host, which no longer runs."
            )
        self.lease.start_renewing()
        try:
            self._prepare()
            if self.options.cutover:
                self._cut_over()
            else:
                if not self.state.doc["copy"]["done"]:
                    self._copy()
                self._follow()
        except (HistoryLost, OperationFailure) as exc:
            if isinstance(exc, OperationFailure) and exc.code != 286:
                raise
            raise SyncError(HISTORY_LOST_MESSAGE) from None
        except StandaloneSource:
            raise SyncError(standalone_message(self.options.source_uri)) from None
        except LeaseLost as exc:
            raise SyncError(
                f"lease lost: {exc}; this run stopped writing. Only one sync_atlas may run per target database."
            ) from None
        finally:
            self.lease.release()
            self.figures.seconds = round(time.monotonic() - self.started, 3)
        return self.figures

    # -- before the copy -------------------------------------------------------------------------
    def _source_identity(self) -> dict:
        return {
            "uri": redact(self.options.source_uri),
            "hosts": sorted(server_key(self.options.source_uri)),
            "db": self.options.source_db,
        }

    def _prepare(self) -> None:
        self.state = SyncState(self.target_db, self.lease.run_id)
        doc = self.state.load()
        if doc is None or self.options.restart or not doc["copy"]["done"]:
            self._preflight()  # before anything is cleared or copied
        if doc is not None and self.options.restart:
            self.state.clear()
            doc = None
            self.say("--restart: the saved sync state was cleared; the copy starts over.")
        if self.options.cutover and not (doc and doc["copy"]["done"]):
            raise SyncRefused(
                f"refused: nothing to cut over: the target database {self.options.target_db} holds "
                f"{'no sync state' if doc is None else 'an unfinished copy'}. Run sync_atlas without --cutover "
                "first; once it follows with a small lag, stop it (Ctrl-C) and run --cutover."
            )
        if doc is not None and (doc.get("cutover") or {}).get("result") == "GO":
            raise SyncRefused(
                f"refused: the target database {self.options.target_db} was cut over (GO at "
                f"{doc['cutover'].get('at'):%Y-%m-%d %H:%M:%S} UTC): it is the application's database now, and a "
                "sync would overwrite what it writes. To copy from the source again (after a rollback), pass "
                "--restart --yes."
            )
        identity = self._source_identity()
        if doc is not None:
            saved = doc.get("source") or {}
            if (saved.get("hosts"), saved.get("db")) != (identity["hosts"], identity["db"]):
                raise SyncRefused(
                    f"refused: the target database {self.options.target_db} holds the state of a sync from "
                    f"{saved.get('uri')} database {saved.get('db')}, not from this source. Pass that "
                    "source, or --restart --yes to start over from this one."
                )
            self.state.claim()
        elif not self.options.restart:
            holding = self._target_collections_with_documents()
            if holding:
                raise SyncRefused(
                    f"refused: the target database {self.options.target_db} already holds documents "
                    f"({', '.join(holding[:5])}{', ...' if len(holding) > 5 else ''}) and no sync state: "
                    "sync_atlas copies into an empty database. Choose an empty --target-db, or pass "
                    "--restart --yes to make this one identical to the source (documents that differ are "
                    "replaced, documents the source lacks are deleted)."
                )
        if doc is None:
            token, operation_time = record_start(self.source_db, expanded=self.expanded)
            self.state.create(
                {
                    "source": identity,
                    "target_db": self.options.target_db,
                    "start": {"token": token, "operation_time": operation_time, "at": datetime.now(UTC)},
                    "copy": {"done": False, "collections": []},
                    "stream": {"token": None, "applied_through": None, "events": {}},
                    "refresh": [],
                    "verify": {},
                }
            )
            self.say("Change stream opened and its starting point saved on the target; copying.")
        else:
            self.say("Resuming from the state saved on the target.")
        self.refresh = RefreshSet(self.state.doc.get("refresh"))

    def _target_collections_with_documents(self) -> list[str]:
        return [
            name
            for name in sorted(self.target_db.list_collection_names())
            if is_data_collection(name) and self.target_db[name].find_one({}, {"_id": 1}) is not None
        ]

    def _preflight(self) -> None:
        size = source_size(self.source_db, source_collections(self.source_db))
        self.total_documents = sum(size.documents.values())
        quota = self.options.quota_mb * 1024 * 1024
        if self.options.quota_mb and size.total_bytes > quota:
            raise SyncRefused(
                f"refused, nothing copied: the source database {self.options.source_db} holds "
                f"{human_bytes(size.data_bytes)} of data and {human_bytes(size.index_bytes)} of indexes "
                f"({human_bytes(size.total_bytes)}), more than --quota-mb {self.options.quota_mb:g} "
                f"({human_bytes(quota)}). Free space on the source, or choose a larger cluster tier and "
                "pass its storage with --quota-mb (0 turns the check off)."
            )

    # -- the copy --------------------------------------------------------------------------------
    def _copy(self) -> None:
        self.figures.phase = "copy"
        infos = source_collections(self.source_db)
        entries = {entry["name"]: entry for entry in self.state.doc["copy"]["collections"]}
        total = self.total_documents
        done_before = sum(entry.get("read", 0) for entry in entries.values() if entry.get("done"))
        copy_started, progress = time.monotonic(), {"read": done_before}

        def on_batch(current: CollectionCopy) -> None:
            read = progress["read"] + current.read
            elapsed = time.monotonic() - copy_started
            rate = (read - done_before) / elapsed if elapsed > 0 else 0.0
            eta = f", ETA {_duration((total - read) / rate)}" if rate > 0 and total > read else ""
            share = f"/{total} documents ({100 * read / total:.0f}%)" if total >= read else " documents"
            self.status(f"copying: {read}{share}, {rate:.0f} documents/s{eta} ({current.name})")
            entries[current.name] = current.to_state()
            self.state.save(
                copy={"done": False, "collections": list(entries.values())}, refresh=self.refresh.to_state()
            )
            self._check_history(self.state.doc["start"]["operation_time"])

        def should_stop() -> bool:
            return self.stop.is_set() or self.lease.lost.is_set()

        for info in infos:
            if entries.get(info["name"], {}).get("done"):
                continue
            try:
                result = copy_collection(
                    self.source_db,
                    self.target_db,
                    info,
                    pacer=self.pacer,
                    refresh=self.refresh,
                    batch_bytes=self.options.batch_bytes,
                    on_batch=on_batch,
                    should_stop=should_stop,
                )
            except CopyInterrupted:
                if self.lease.lost.is_set():
                    raise LeaseLost("another run took the lease over") from None
                done = sum(1 for entry in entries.values() if entry.get("done"))
                raise SyncInterrupted(
                    f"interrupted during the initial copy ({done} of {len(infos)} collections copied; "
                    "the state is saved on the target): run the same command again to resume."
                ) from None
            except OperationFailure as exc:
                if exc.code != NAMESPACE_NOT_FOUND:
                    raise
                continue  # dropped on the source meanwhile: its drop event stops the sync with the advice
            progress["read"] += result.read
            entries[result.name] = result.to_state()
            self.state.save(
                copy={"done": False, "collections": list(entries.values())}, refresh=self.refresh.to_state()
            )
        self.figures.problems += copy_views(self.source_db, self.target_db, pacer=self.pacer)
        self.state.save(
            copy={"done": True, "finished_at": datetime.now(UTC), "collections": list(entries.values())},
            refresh=self.refresh.to_state(),
        )
        self.figures.copy = _copy_totals(entries.values())
        self.say(
            f"Copied {self.figures.copy['collections']} collections: {self.figures.copy['inserted']} documents "
            f"inserted, {self.figures.copy['replaced']} replaced, {self.figures.copy['deleted']} deleted, "
            f"{self.figures.copy['identical']} already identical; applying the changes made since the start."
        )

    def _check_history(self, position) -> None:
        if time.monotonic() - self._history_checked < HISTORY_CHECK_SECONDS:
            return
        self._history_checked = time.monotonic()
        if history_is_lost(self.source_client, position):
            raise HistoryLost()

    # -- following -------------------------------------------------------------------------------
    def _follow(self) -> None:
        self._start_following()
        try:
            while not self.stop.is_set():
                self.follow_step()
                if self._done():
                    self.figures.stopped_by = self.options.stop_when
                    break
            else:
                self.figures.stopped_by = "signal"
        finally:
            self._stop_following()

    def _start_following(self) -> None:
        self.figures.phase = "follow"
        self.figures.copy = self.figures.copy or _copy_totals(self.state.doc["copy"]["collections"])
        stream_state = self.state.doc["stream"]
        self.events_by_kind = Counter(stream_state.get("events") or {})  # since the start, saved
        self.run_events: Counter = Counter()  # this run's
        self.verifier = LiveVerifier(
            self.source_db, self.target_db, pacer=self.pacer, saved=self.state.doc.get("verify")
        )
        self.applier = Applier(self.target_db, self.source_db, pacer=self.pacer, refresh=self.refresh)
        self.token = stream_state.get("token") or self.state.doc["start"]["token"]
        self.reader = StreamReader(
            self.source_db,
            token=self.token,
            expanded=self.expanded,
            clock_client=self.source_client,
            await_ms=CUTOVER_AWAIT_MS if self.options.cutover else AWAIT_MS,
        )
        self.held, self.applied = deque(), deque()
        self.catch_ups, self.caught_up = 0, False
        # Every event up to this operation time of the source is applied (from the last marker).
        self.read_through = None
        # Called with each batch before it is applied (the cut-over's check for writes after the freeze).
        self.screen: Callable[[list], object] | None = None
        self.applied_through, self.last_wall = (
            stream_state.get("applied_through"),
            stream_state.get("wall_time"),
        )
        self._index_retry = self._saved_at = self._refreshed_at = 0.0
        self.following_since = time.monotonic()
        self.reader.start()

    def follow_step(self) -> None:
        """Apply the next batch of events, then a slice of housekeeping and verification."""
        if self.lease.lost.is_set():
            raise LeaseLost("another run took the lease over")
        events, stop_event = self._next_batch()
        if events and self.screen is not None:
            self.screen(events)
        if events:
            self._apply(self.applier, events)
        if stop_event is not None:
            raise SyncError(source_changed_message(stop_event))
        if self.caught_up:
            self._housekeeping(self.applier)
        self.verifier.step(catch_up=self.catch_ups if self.caught_up else None)
        if time.monotonic() - self._saved_at > SAVE_SECONDS:
            self._save_stream()  # the verification's progress, while no event comes
        self._check_history(self.reader.position)
        self._show()

    def _stop_following(self) -> None:
        self.reader.close()
        self._save_stream()
        self._fill_figures()

    # -- the cut-over (cutover.py) ----------------------------------------------------------------
    def _cut_over(self) -> None:
        self._start_following()
        self.figures.phase = "cutover"
        cut = CutOver(self, catch_up_timeout=self.options.catch_up_timeout)
        try:
            self.figures.cutover = cut.run()
        except CutOverInterrupted:
            self.figures.stopped_by = "signal"
            raise SyncInterrupted(
                "interrupted before the freeze: nothing was frozen; the state is saved on the target."
            ) from None
        except NoGo as no_go:
            self.figures.stopped_by = "NO-GO"
            self.figures.cutover = {**cut.figures, "result": "NO-GO", "reason": no_go.summary}
            self.figures.cutover["differences"] = no_go.differences[:DIFFERENCES_SHOWN]
            for line in no_go.differences[:DIFFERENCES_SHOWN]:
                self.say(f"  difference: {line}")
            raise SyncRefused(no_go_message(no_go, cut, len(no_go.differences))) from None
        finally:
            self._stop_following()
        self.figures.stopped_by = "GO"
        self.say(go_message(self.options, self.figures.cutover))

    def _next_batch(self) -> tuple[list, object]:
        """Up to BATCH_EVENTS events, a transaction never split, and the stop event if one came."""
        events, size = [], 0
        while True:
            in_transaction = bool(events) and transaction_of(events[-1]) is not None
            full = len(events) >= BATCH_EVENTS or size >= self.options.batch_bytes
            if full and not in_transaction:
                break
            # The rest of a transaction is on its way (a transaction's events are visible together,
            # so the next empty poll proves it complete); otherwise apply what is there.
            item = self._take(wait=AWAIT_SECONDS + 0.5 if in_transaction else (0.0 if events else 0.2))
            if item is None:
                break
            if isinstance(item, CaughtUp):
                self.catch_ups += 1
                if item.operation_time is not None:  # every event before it is in this batch
                    self.read_through = max(self.read_through or item.operation_time, item.operation_time)
                self.caught_up = not self.held and self.reader.events.empty()
                if in_transaction:
                    break
                continue
            if isinstance(item, ReaderFailed):
                if events:
                    self.held.appendleft(item)
                    break
                raise item.error
            self.caught_up = False
            if in_transaction and full and transaction_of(item) != transaction_of(events[-1]):
                self.held.appendleft(item)
                break
            if item["operationType"] in STOP_EVENTS:
                return events, item
            events.append(item)
            size += len(item.raw)
        return events, None

    def _take(self, *, wait: float):
        if self.held:
            return self.held.popleft()
        try:
            return self.reader.events.get(timeout=wait) if wait else self.reader.events.get_nowait()
        except queue.Empty:
            return None

    def _apply(self, applier: Applier, events: list) -> None:
        result = applier.apply(events)
        if len(self.refresh):
            self.verifier.note_changed({name: set(ids) for name, ids in self.refresh.ids.items()})
            applier.refresh_documents()
        self.events_by_kind.update(result.by_kind)
        self.run_events.update(result.by_kind)
        self.figures.problems = (self.figures.problems + result.problems)[-20:]
        self.figures.events_applied += result.events
        self.figures.updates_without_post_image += result.without_post_image
        last = events[-1]
        self.last_wall = last.get("wallTime")
        self.applied.append((time.monotonic(), result.events))
        self.token, self.applied_through = last["_id"], last["clusterTime"]
        self.verifier.note_changed(result.changed)
        self.verifier.note_structure_changed(result.structure_changed)
        self._save_stream()

    def _save_stream(self) -> None:
        self._saved_at = time.monotonic()
        self.state.save(
            stream={
                "token": self.token,
                "applied_through": self.applied_through,
                "wall_time": self.last_wall,
                "events": dict(self.events_by_kind),
            },
            refresh=self.refresh.to_state(),
            verify=self.verifier.to_state(),
        )

    def _housekeeping(self, applier: Applier) -> None:
        """When caught up: write the refresh set again, build the indexes refused during the copy."""
        if len(self.refresh) and time.monotonic() - self._refreshed_at >= 1.0:
            self._refreshed_at = time.monotonic()
            applier.refresh_documents()
        if time.monotonic() - self._index_retry < INDEX_RETRY_SECONDS:
            return
        self._index_retry = time.monotonic()
        entries = self.state.doc["copy"]["collections"]
        pending = [entry for entry in entries if entry.get("indexes_pending")]
        for entry in pending:
            info = next(iter(self.source_db.list_collections(filter={"name": entry["name"]})), None)
            if info is None:
                continue
            files = CollectionFiles(entry["name"], None, None, collection_metadata(self.source_db, info))
            result = CollectionCopy(**entry)
            build_indexes(self.target_db, files, result, pacer=self.pacer)
            entry.update(result.to_state())
        if pending:
            self.state.save(copy={**self.state.doc["copy"], "collections": entries})
            self.verifier.note_structure_changed({entry["name"] for entry in pending})

    def lag(self) -> tuple[float, int]:
        """(seconds, events): how long the oldest change not yet applied has waited, and how many wait."""
        waiting = self.reader.events.qsize() + len(self.held)
        if self.caught_up or not waiting:
            return 0.0, waiting
        first = (
            self.held[0] if self.held else (self.reader.events.queue[0] if self.reader.events.queue else None)
        )
        wall = (
            _wall_time(first)
            if first is not None and not isinstance(first, CaughtUp | ReaderFailed)
            else None
        )
        if wall is None:
            return 0.0, waiting
        return max(0.0, (self.reader.clock.now() - wall).total_seconds()), waiting

    def _rate(self) -> float:
        """Events applied per second over the last RATE_WINDOW_SECONDS."""
        now = time.monotonic()
        while self.applied and self.applied[0][0] < now - RATE_WINDOW_SECONDS:
            self.applied.popleft()
        window = min(RATE_WINDOW_SECONDS, now - self.following_since)
        return sum(count for _, count in self.applied) / window if window > 0 else 0.0

    def _show(self) -> None:
        seconds, waiting = self.lag()
        summary = self.verifier.summary()
        verified = (
            "full pass done"
            if summary["full_pass_done"]
            else f"full pass {summary['documents_compared']} documents"
        )
        self.status(
            f"following: lag {seconds:.1f}s ({waiting} events), {self._rate():.1f} events/s, "
            f"{self.figures.events_applied} applied; verify: {verified}, {summary['pending_rechecks']} to "
            f"recheck, {summary['differences']} differences"
        )

    def _done(self) -> bool:
        if self.options.stop_when is None or not self.caught_up:
            return False
        return self.options.stop_when == "caught_up" or self.verifier.complete

    def _fill_figures(self) -> None:
        seconds, waiting = self.lag()
        figures = self.figures
        figures.lag_seconds, figures.lag_events = round(seconds, 3), waiting
        elapsed = time.monotonic() - self.following_since
        figures.events_by_kind = dict(self.run_events)
        figures.events_per_second = round(figures.events_applied / elapsed, 1) if elapsed > 0 else 0.0
        figures.target_operations = self.pacer.operations
        figures.refresh_pending = len(self.refresh)
        figures.documents_refreshed = self.applier.refreshed
        figures.indexes_pending = [
            f"{entry['name']}.{name}"
            for entry in self.state.doc["copy"]["collections"]
            for name in entry.get("indexes_pending") or []
        ]
        figures.verification = self.verifier.summary() if self.verifier else {}


def _copy_totals(entries) -> dict:
    entries = list(entries)
    totals = {
        key: sum(entry.get(key, 0) for entry in entries)
        for key in ("inserted", "replaced", "deleted", "identical")
    }
    return {"collections": sum(1 for entry in entries if entry.get("done")), **totals}


def _wall_time(event) -> datetime | None:
    wall = event.get("wallTime")
    if isinstance(wall, datetime):
        return wall if wall.tzinfo else wall.replace(tzinfo=UTC)
    cluster_time = event.get("clusterTime")
    return datetime.fromtimestamp(cluster_time.time, UTC) if cluster_time is not None else None


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60}:{seconds % 60:02d}"
    )


@contextlib.contextmanager
def stop_on_signals():
    """An Event set by SIGINT or SIGTERM (the following phase ends on it, with its state saved)."""
    stop = threading.Event()
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    for number in previous:
        signal.signal(number, lambda *_: stop.set())
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class StatusPrinter:
    """The status line: rewritten in place on a terminal, one line every ``interval`` s in a log.

    ``say`` prints a message of its own line (nothing at verbosity 0).
    """

    def __init__(self, stream, *, verbosity: int, interval: float = 10.0) -> None:
        self.stream, self.verbosity, self.interval = stream, verbosity, interval
        isatty = getattr(getattr(stream, "_out", stream), "isatty", lambda: False)
        self.tty = bool(isatty())
        self._last = 0.0
        self._shown = False

    def __call__(self, line: str) -> None:
        now = time.monotonic()
        if self.verbosity < 1 or now - self._last < (0.5 if self.tty else self.interval):
            return
        self._last = now
        if self.tty:
            self.stream.write(f"\r{line}\033[K", ending="")
            self.stream.flush()
            self._shown = True
        else:
            self.stream.write(line)

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K", ending="")
            self._shown = False

    def say(self, line: str) -> None:
        if self.verbosity >= 1:
            self.clear()
            self.stream.write(line)


def format_figures(figures: SyncFigures) -> str:
    """The closing lines: what this run did, and where it stands."""
    verification = figures.verification or {}
    first = (
        f"Cut-over: {figures.stopped_by}."
        if figures.stopped_by in ("GO", "NO-GO")
        else f"Stopped ({figures.stopped_by or figures.phase}); the state is saved on the target: run the same "
        "command again to resume."
    )
    lines = [
        first,
        f"  events applied: {figures.events_applied} in {figures.seconds:.1f}s ({figures.events_per_second} "
        f"events/s): {', '.join(f'{kind} {count}' for kind, count in sorted(figures.events_by_kind.items())) or 'none'}",
        f"  lag at the end: {figures.lag_seconds:.1f}s, {figures.lag_events} events",
    ]
    if verification:
        lines.append(
            f"  verification: full pass {'done' if verification['full_pass_done'] else 'not finished'} "
            f"({verification['documents_compared']} documents compared, {verification['rechecked']} rechecks), "
            f"{verification['pending_rechecks']} to recheck, {verification['differences']} differences"
        )
        lines += [f"    {text}" for text in verification.get("first_differences", [])]
    if figures.refresh_pending:
        lines.append(
            f"  {figures.refresh_pending} documents wait to be written again (a unique index collision)"
        )
    if figures.indexes_pending:
        lines.append(
            f"  indexes not built yet (refused by the data so far): {', '.join(figures.indexes_pending)}"
        )
    lines += [f"  problem: {text}" for text in figures.problems]
    return "\n".join(lines)


def options_for_command(options: dict, settings) -> SyncOptions:
    """SyncOptions from the command's options and the settings' defaults.

    The sides as every migration command names them (``runs.named_source``/``named_target``:
    never MONGODB_URI); raises CommandError (exit 2 for a side not named, 1 for bad values).
    """
    target_uri, target_name = named_target(
        options.get("target_uri"), option="--target-uri", command="sync_atlas"
    )
    source_uri, source_name = named_source(
        options.get("source_uri"), option="--source-uri", command="sync_atlas"
    )
    if options.get("restart") and not options.get("yes"):
        raise refuse(
            "--restart forgets the saved state and copies again, replacing what differs on the target: "
            "add --yes to confirm."
        )
    if options.get("restart") and options.get("cutover"):
        raise refuse("--cutover resumes from the saved state; it does not go with --restart.")
    if options["max_ops_per_second"] < 0 or options["quota_mb"] < 0:
        raise refuse("--max-ops-per-second and --quota-mb take 0 (no limit) or a positive number.")
    if options.get("catch_up_timeout", 300.0) <= 0:
        raise refuse("--catch-up-timeout takes a positive number of seconds.")
    source_db = options.get("db") or settings.MONGODB_DB_NAME
    return SyncOptions(
        source_uri=source_uri,
        target_uri=target_uri,
        source_db=source_db,
        target_db=options.get("target_db") or source_db,
        source_uri_name=source_name,
        target_uri_name=target_name,
        restart=bool(options.get("restart")),
        max_ops_per_second=options["max_ops_per_second"],
        quota_mb=options["quota_mb"],
        cutover=bool(options.get("cutover")),
        catch_up_timeout=options.get("catch_up_timeout", 300.0),
    )


def sync_run(
    options: SyncOptions, *, audit, status: StatusPrinter, json_path: str | None = None
) -> SyncFigures:
    """sync_atlas: one LiveSync run, recorded in the target's database, stopped by SIGINT/SIGTERM.

    Prints the opening line, the status while it runs, and the closing figures (also written to
    ``json_path``, whatever the end). Raises CommandError: SyncError and its subclasses, or what
    ``command_failure`` makes of any other failure; the audit record ends with the same code.
    """
    audit.source, audit.target, audit.database = options.source_uri, options.target_uri, options.target_db
    run = LiveSync(options, say=status.say, status=status)
    try:
        run.refuse_same_database()  # before any connection, as import and verify do
    except SyncError as exc:
        raise CommandError(str(exc), returncode=exc.exit_code) from None
    status.say(run.figures.opening_line())
    target_client = client_for(options.target_uri, name=options.target_uri_name)
    try:
        run.target_client = target_client
        location = f"database {options.target_db} of the target"
        with audit.recording(target_client[options.target_db], location=location), stop_on_signals() as stop:
            run.stop = stop
            try:
                run.run()
            except SyncError as exc:  # inside the record, which ends with the same exit code
                raise CommandError(str(exc), returncode=exc.exit_code) from None
            finally:
                status.clear()
                audit.counts = run.figures.audit_counts()
                write_json(run.figures, json_path)
            status.say(format_figures(run.figures))
    finally:
        target_client.close()
    return run.figures


def write_json(figures: SyncFigures, path: str | None) -> None:
    if path:
        Path(path).write_text(json.dumps(figures.to_dict(), indent=2, default=str) + "\n")
