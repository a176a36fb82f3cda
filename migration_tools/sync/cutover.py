"""The cut-over of a live sync: a freeze of seconds, a drain, the proof, then GO or NO-GO.

``sync_atlas --cutover`` resumes from the saved state and, in one run:

1. catches up until the lag is under CATCH_UP_LAG_SECONDS, with the live verification's full
   pass done (else, after ``--catch-up-timeout``: NO-GO, nothing frozen);
2. sets the source application's maintenance flag to ``hard`` (no write at all, reads go on) and
   waits ``PROPAGATION_SECONDS``, the flag's own bound, applying events meanwhile;
3. drains every event up to the source's operation time at that moment, rechecks every document
   that changed (the verification's recheck set), and compares counts, indexes and options of
   every collection and the domain invariants of the users touched since the full pass;
4. GO: sets the target's flag ``on`` (the application, restarted on it, still refuses writes
   until ``manage.py maintenance off`` there), prints the freeze time and the next steps. The
   source stays frozen. NO-GO: the differences, the source's flag back where it was, exit 1.

A document event after the freeze took effect (the source's operation time once the flag had
propagated) cannot come from the application: an insert, update or replace then, or a delete of a
document no TTL index had expired, is a writer that bypasses the app, and NO-GO as soon as it is
read. Every wait is bounded, so a cut-over never hangs.
"""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime

from bson import Timestamp
from pymongo.errors import PyMongoError

from gamification.invariants import count_differences, ledger_check, user_column, users_collection
from gamification.models import PointsEntry
from migration_tools.dump import PER_USER_MODELS, list_dumpable
from migration_tools.sync.apply import id_key, id_value
from migration_tools.sync.stream import read_clock
from migration_tools.verify import LiveSide, ttl_expired
from studymaster.maintenance import PROPAGATION_SECONDS, maintenance_get, maintenance_set

CATCH_UP_LAG_SECONDS = 1.0
DRAIN_SECONDS = 30.0  # to apply what came before the freeze: under a second of lag, plus the wait
SETTLE_SECONDS = 60.0  # for the rechecks of what changed since the last pass
SHOWN = 10


class NoGo(Exception):
    """The cut-over cannot go: ``differences`` say why; ``frozen`` whether the source was frozen."""

    def __init__(self, summary: str, differences: list[str], *, frozen: bool) -> None:
        super().__init__(summary)
        self.summary, self.differences, self.frozen = summary, differences, frozen


class CutOverInterrupted(Exception):
    """Ctrl-C or SIGTERM before the freeze: nothing was frozen."""


class Bypass(Exception):
    """A write on the source after the freeze took effect."""


def _who() -> str:
    return f"sync_atlas --cutover@{socket.gethostname()}"


class CutOver:
    """One cut-over, driving a LiveSync whose following has started (see the module docstring)."""

    def __init__(self, sync, *, catch_up_timeout: float) -> None:
        self.sync = sync
        self.catch_up_timeout = catch_up_timeout
        self.source_db, self.target_db = sync.source_db, sync.target_db
        self.frozen_at: float | None = None  # monotonic time the source's flag was set
        self.freeze_time: Timestamp | None = None  # the source's operation time once it took effect
        self.previous_level = "off"
        self.thawed: str | None = None  # the level the source's flag went back to after a NO-GO
        self.events_at_freeze = 0
        self.figures: dict = {}

    def run(self) -> dict:
        """GO (returns the figures) or NoGo; the source's flag is back as it was after a NoGo."""
        self._catch_up()
        try:
            self._freeze()
            differences = self._drain_and_check()
            if differences:
                raise NoGo(f"{len(differences)} differences after the drain", differences, frozen=True)
            self._go()
        except Bypass as exc:
            self._thaw()
            raise NoGo(f"a writer bypasses the app: {exc}", [], frozen=True) from None
        except BaseException:
            self._thaw()
            raise
        return self.figures

    # -- 1. catch up, nothing frozen ---------------------------------------------------------------
    def _catch_up(self) -> None:
        sync = self.sync
        deadline = time.monotonic() + self.catch_up_timeout
        while True:
            sync.follow_step()
            lag, waiting = sync.lag()
            if lag < CATCH_UP_LAG_SECONDS and sync.verifier.pass_done:
                return
            if sync.stop.is_set():
                raise CutOverInterrupted()
            if time.monotonic() >= deadline:
                summary = sync.verifier.summary()
                why = (
                    f"the lag is still {lag:.1f}s ({waiting} events)"
                    if lag >= CATCH_UP_LAG_SECONDS
                    else f"the verification's full pass is not done ({summary['documents_compared']} documents compared)"
                )
                raise NoGo(
                    f"not ready to cut over after --catch-up-timeout {self.catch_up_timeout:g}s: {why}; "
                    "nothing was frozen. Let sync_atlas follow "
                    "(without --cutover) until its status shows a lag under 1s and the full pass done, "
                    "then run --cutover again",
                    [],
                    frozen=False,
                )

    # -- 2. freeze ---------------------------------------------------------------------------------
    def _freeze(self) -> None:
        sync = self.sync
        self.previous_level = maintenance_get(self.source_db).level
        self.frozen_at = time.monotonic()
        self.events_at_freeze = sync.figures.events_applied
        maintenance_set(self.source_db, level="hard", set_by=_who())
        sync.say(
            f"Froze the source: its maintenance flag is hard (writes, logins and token refreshes answer 503, "
            f"reads go on); waiting {PROPAGATION_SECONDS:g}s for every process to follow."
        )
        propagated = time.monotonic() + PROPAGATION_SECONDS
        while time.monotonic() < propagated:
            sync.follow_step()
        self.freeze_time = read_clock(sync.source_client).operation_time
        sync.screen = self._screen

    def _screen(self, events: list) -> None:
        """Raise Bypass at the first write after the freeze that neither the app nor a TTL index made."""
        for event in events:
            cluster_time = event.get("clusterTime")
            if self.freeze_time is None or cluster_time is None or cluster_time <= self.freeze_time:
                continue
            kind, name = event["operationType"], (event.get("ns") or {}).get("coll")
            if kind == "delete" and self._expired_on_target(name, event["documentKey"]):
                continue
            when = datetime.fromtimestamp(cluster_time.time, UTC).strftime("%H:%M:%S")
            document = f" _id {id_value(id_key(event['documentKey']))!r}" if "documentKey" in event else ""
            raise Bypass(
                f"{kind} on {name}{document} at {when} UTC, after the source's maintenance flag (hard) took "
                "effect. Something writes to the source without going through the application (a script, "
                "a worker, another service, mongosh); stop it, then run --cutover again"
            )

    def _expired_on_target(self, name: str, key) -> bool:
        """A delete a TTL index explains: the document had expired (or the target's TTL already took it)."""
        ttl = self.sync.verifier.ttl_of(name)
        if not ttl:
            return False
        document = self.sync.verifier.target_db[name].find_one({"_id": key["_id"]})
        return document is None or ttl_expired(document.raw, ttl, datetime.now(UTC))

    # -- 3. drain and check ------------------------------------------------------------------------
    def _drain_to(self, operation_time: Timestamp | None, what: str) -> None:
        sync = self.sync
        deadline = time.monotonic() + DRAIN_SECONDS
        while operation_time is not None and (
            sync.read_through is None or sync.read_through < operation_time
        ):
            if time.monotonic() >= deadline:
                lag, waiting = sync.lag()
                raise NoGo(
                    f"{what} did not finish within {DRAIN_SECONDS:g}s ({waiting} events waiting, lag {lag:.1f}s)",
                    [],
                    frozen=True,
                )
            sync.follow_step()

    def _drain_and_check(self) -> list[str]:
        sync = self.sync
        self._drain_to(self.freeze_time, "the drain to the freeze")
        verifier = sync.verifier
        names = sorted(
            {info["name"] for db in (self.source_db, self.target_db) for info in list_dumpable(db)}
        )
        verifier.note_structure_changed(set(names))  # indexes and options of every collection, now
        # Frozen and drained: rounds of rechecks back to back, no need to wait for new events.
        deadline = time.monotonic() + SETTLE_SECONDS
        while len(sync.refresh) or not verifier.settle():
            if time.monotonic() >= deadline:
                return [
                    f"the rechecks did not settle within {SETTLE_SECONDS:g}s ({verifier.pending} documents "
                    f"to recheck, {len(sync.refresh)} to write again)"
                ]
            if len(sync.refresh):
                sync.applier.refresh_documents()
        differences = verifier.differences()
        differences += count_mismatches(verifier, names)
        users = touched_users(
            self.source_db, self.target_db, verifier.touched, overflow=verifier.touched_overflow
        )
        differences += invariant_failures(self.source_db, self.target_db, users)
        # Nothing came since: the source's time now, drained too (a bypassing writer shows here at the latest).
        self._drain_to(read_clock(sync.source_client).operation_time, "the last drain")
        self.figures.update(
            events_since_freeze=sync.figures.events_applied - self.events_at_freeze,
            rechecked=verifier.rechecked,
            collections=len(names),
            users_checked="all" if users is None else len(users),
        )
        return differences

    # -- 4. GO, or back -----------------------------------------------------------------------------
    def _go(self) -> None:
        maintenance_set(self.target_db, level="on", set_by=_who())
        freeze_seconds = round(time.monotonic() - self.frozen_at, 3)
        self.figures.update(result="GO", freeze_seconds=freeze_seconds, at=datetime.now(UTC))
        self.sync.state.save(cutover={**self.figures, "freeze_time": self.freeze_time})

    def _thaw(self) -> None:
        """The source's flag back to its level before the freeze (nothing to do if it was never set)."""
        if self.frozen_at is None:
            return
        try:
            maintenance_set(self.source_db, level=self.previous_level, set_by=_who())
            self.thawed = self.previous_level
        except PyMongoError as exc:
            self.thawed = None
            self.sync.say(
                f"warning: the source's maintenance flag could not be set back to {self.previous_level} ({exc}); "
                f"run manage.py maintenance {self.previous_level} against the source yourself."
            )


def count_mismatches(verifier, names: list[str]) -> list[str]:
    """Collections whose number of live documents (TTL-expired ones left out) differs between the sides."""
    found = []
    for name in names:
        ttl = verifier.ttl_of(name)
        live = {"$nor": [{field: {"$lte": cutoff}} for field, cutoff in _cutoffs(ttl)]} if ttl else {}
        source = verifier.source_db[name].count_documents(live)
        target = verifier.target_db[name].count_documents(live)
        if source != target:
            found.append(f"{name}: {source} documents on the source, {target} on the target")
    return found


def _cutoffs(ttl) -> list[tuple[str, datetime]]:
    now = datetime.now(UTC)
    return [(field, datetime.fromtimestamp(now.timestamp() - seconds, UTC)) for field, seconds in ttl]


def touched_users(source_db, target_db, touched: dict[str, set[bytes]], *, overflow: bool) -> list | None:
    """The ``_id`` of every user whose documents changed (users, ledger, per-user collections); None: all."""
    if overflow:
        return None
    users = {id_value(key) for key in touched.get(users_collection(), ())}
    for model in (PointsEntry, *PER_USER_MODELS):
        keys = touched.get(model._meta.db_table)
        if not keys:
            continue
        column = user_column(model)
        ids = [id_value(key) for key in keys]
        for db in (source_db, target_db):
            for document in db[model._meta.db_table].find({"_id": {"$in": ids}}, {column: 1}):
                if document.get(column) is not None:
                    users.add(document[column])
    return sorted(users, key=str)


def invariant_failures(source_db, target_db, users: list | None) -> list[str]:
    """The domain invariants (gamification.invariants) for ``users`` (None: every user) on the target."""
    if users == []:
        return []
    failures = []
    target_names = {info["name"] for info in list_dumpable(target_db)}
    if {users_collection(), PointsEntry._meta.db_table} <= target_names:
        off = ledger_check(target_db, user_ids=users).off_ledger
        if off:
            failures.append(
                f"points equal the ledger: {len(off)} users differ on the target (first: {', '.join(off[:SHOWN])})"
            )
    source, target = LiveSide(source_db), LiveSide(target_db)
    for model in PER_USER_MODELS:
        name = model._meta.db_table
        if name not in source.names() or name not in target.names():
            continue
        wrong = count_differences(source.count_by_user(model, users), target.count_by_user(model, users))
        if wrong:
            failures.append(
                f"{name} per user: {len(wrong)} users with other counts than on the source "
                f"(first: {', '.join(wrong[:SHOWN])})"
            )
    return failures
