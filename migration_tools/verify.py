"""Compare a target database with its source (a live database or a dump), byte for byte.

Both sides are read sorted by ``_id`` and merged, one document at a time, so memory does
not grow with a collection and nothing needs ``dbHash`` (which Atlas M0 lacks). Two
documents are the same only when their raw BSON bytes are: types (int32 against Int64),
field order and values all count. The collections the target's totals check reads in full
anyway are first compared by an order-independent hash of their documents, and merged only
when it differs. On top of the documents it compares indexes and
collection options, and checks the application's invariants on the target.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bson
from bson import json_util
from bson.json_util import RELAXED_JSON_OPTIONS
from django.conf import settings

from gamification.invariants import (
    TotalsCheck,
    count_differences,
    ledger_check,
    ledger_collection,
    raw_counts_by_user,
    totals_check,
    totals_collections,
    user_column,
    users_collection,
)
from migration_tools.archive import dump_label, dump_source
from migration_tools.bsonfiles import (
    DECODE,
    ContentHash,
    DamagedDumpError,
    document_id,
    id_order_key,
    split_documents,
)
from migration_tools.dump import (
    PER_USER_MODELS,
    SORTED_BY_ID,
    Dump,
    describe_emptiness,
    holds_data,
    left_out_sentence,
    list_dumpable,
    open_private,
    sorted_documents,
    tools_collections_in,
)
from migration_tools.progress import Progress
from migration_tools.restore import index_spec, option_differences, same_index
from migration_tools.runs import (
    Audit,
    cannot_run,
    named_source,
    named_target,
    paced_client,
    refuse,
    same_database,
    where,
)
from sessions_app.models import StudySession
from studymaster.mongo import redact
from studymaster.reading import READ_BATCH_DOCUMENTS, prefetched
from studymaster.tools_collections import is_data_collection, is_tools_collection

SHOWN_IDS = 5


class VerifyError(Exception):
    """The comparison itself could not be carried out (exit code 2)."""


@dataclass
class CollectionDiff:
    name: str
    source_documents: int = 0
    target_documents: int = 0
    missing: int = 0
    extra: int = 0
    different: int = 0
    expired: int = 0
    missing_ids: list[str] = field(default_factory=list)
    extra_ids: list[str] = field(default_factory=list)
    different_ids: list[str] = field(default_factory=list)
    expired_ids: list[str] = field(default_factory=list)
    index_differences: list[str] = field(default_factory=list)
    option_differences: list[str] = field(default_factory=list)
    view: bool = False  # compared by its definition (viewOn, pipeline, collation) alone

    @property
    def identical(self) -> bool:
        return not (
            self.missing or self.extra or self.different or self.index_differences or self.option_differences
        )


@dataclass
class InvariantResult:
    name: str
    status: str  # "ok", "failed" or "skipped"
    detail: str


@dataclass
class VerifyReport:
    source: str
    target: str
    source_db: str
    target_db: str
    excluded: list[str]
    collections: list[CollectionDiff] = field(default_factory=list)
    invariants: list[InvariantResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def identical(self) -> bool:
        return all(c.identical for c in self.collections) and all(
            i.status != "failed" for i in self.invariants
        )

    @property
    def documents(self) -> int:
        return sum(c.source_documents for c in self.collections)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["identical"] = self.identical
        for item, diff in zip(data["collections"], self.collections, strict=True):
            item["identical"] = diff.identical
        return data


# -- the two kinds of side ---------------------------------------------------------------------
class LiveSide:
    """A database on a server: its data collections (never the tools' own)."""

    def __init__(self, db) -> None:
        self.db = db
        self._indexes: dict[str, list[dict]] = {}
        self.infos, self.views = {}, {}
        for info in list_dumpable(db, views=True):
            (self.views if info.get("type") == "view" else self.infos)[info["name"]] = info
        self.left_out = tools_collections_in(db)

    def names(self) -> set[str]:
        return set(self.infos)

    def options(self, name: str) -> dict:
        return dict(self.infos[name].get("options") or {})

    def view_options(self) -> dict[str, dict]:
        """Each view's definition: viewOn, pipeline, collation."""
        return {name: dict(info.get("options") or {}) for name, info in self.views.items()}

    def indexes(self, name: str) -> list[dict]:
        if name not in self._indexes:  # asked twice per collection (indexes, TTL): one round trip
            self._indexes[name] = [dict(index) for index in self.db[name].list_indexes()]
        return self._indexes[name]

    def documents(self, name: str) -> Iterator[bytes]:
        """Raw documents sorted by _id, read in bounded server batches, one batch ahead."""
        batches = self.db[name].find_raw_batches({}, **SORTED_BY_ID, batch_size=READ_BATCH_DOCUMENTS)
        for batch in prefetched(batches):
            yield from split_documents(batch)

    def digest(self, name: str, progress: Progress) -> ContentHash:
        """The order-independent hash of every document, read in natural order (no sort to pay for)."""
        digest = ContentHash()
        for batch in prefetched(self.db[name].find_raw_batches({}, batch_size=READ_BATCH_DOCUMENTS)):
            digest.add_batch(batch)
            progress.update(name, digest.count, digest.bytes)
        return digest

    def count_by_user(self, model, user_ids: list | None = None) -> Counter:
        """Documents per user (``str`` of the user's ``_id``) of a per-user model's collection,
        of the users ``user_ids`` only when given."""
        column = user_column(model)
        pipeline = [{"$match": {column: {"$in": user_ids}}}] if user_ids is not None else []
        pipeline.append({"$group": {"_id": f"${column}", "n": {"$sum": 1}}})
        rows = self.db[model._meta.db_table].aggregate(pipeline)
        return Counter({str(row["_id"]): row["n"] for row in rows})


class DumpSide:
    """A dump (a folder or an archive): its data collections and views; a collection not sorted by
    _id (mongodump's natural order) is sorted first."""

    def __init__(self, dump: Dump) -> None:  # or an ArchiveDump
        self.dump = dump
        self.files = {name: files for name, files in dump.collections.items() if is_data_collection(name)}
        self.left_out = sorted(name for name in dump.collections if is_tools_collection(name))

    def names(self) -> set[str]:
        return set(self.files)

    def options(self, name: str) -> dict:
        return self.files[name].options

    def view_options(self) -> dict[str, dict]:
        """Each view's definition, as the dump holds it."""
        return {name: view.options for name, view in self.dump.views.items() if is_data_collection(name)}

    def indexes(self, name: str) -> list[dict]:
        return self.files[name].indexes

    def documents(self, name: str) -> Iterator[bytes]:
        return sorted_documents(self.files[name])

    def digest(self, name: str, progress: Progress) -> ContentHash:
        """The order-independent hash of every document, in file order (never sorted)."""
        digest = ContentHash()
        for raw in self.files[name].documents():
            digest.add(raw)
            progress.update(name, digest.count, digest.bytes)
        return digest

    def count_by_user(self, model) -> Counter:
        """Documents per user (``str`` of the user's ``_id``) of a per-user model's collection."""
        return raw_counts_by_user(model, self.files[model._meta.db_table].documents())


# -- the comparison ----------------------------------------------------------------------------
def verify(
    source,
    target_db,
    *,
    source_label: str,
    target_label: str,
    source_db: str,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> VerifyReport:
    """Compare ``source`` (a LiveSide or DumpSide, or a dump: a folder's Dump or an archive's
    ArchiveDump) with the database ``target_db``.

    The tools' own collections are left out on both sides. A document whose TTL (by either side's
    TTL indexes) has passed at ``now`` is counted as expired, apart, and is never a difference.
    PyMongo errors propagate (the caller maps them to exit code 2).
    """
    started = time.monotonic()
    progress = progress or Progress()
    if not isinstance(source, LiveSide | DumpSide):
        source.check(progress=progress)
        source = DumpSide(source)
    target = LiveSide(target_db)
    report = VerifyReport(
        source=source_label,
        target=target_label,
        source_db=source_db,
        target_db=target_db.name,
        excluded=sorted(set(source.left_out) | set(target.left_out)),
    )
    now = now or datetime.now(UTC)
    # The target's own invariants read only the target: they run beside the comparison, whose
    # reads wait on both servers, instead of after it. Leaving early stops them at the next user.
    # The collections they read in full anyway are hashed as they go by; such a collection is
    # read in _id order only when its hash differs from the source's (see _digested).
    digested = _digested(source, target)
    target_digests = {name: ContentHash() for name in digested}
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-invariants") as pool:
        on_target = pool.submit(target_invariants, target, stop=stop, digests=target_digests)
        try:
            source_digests = _compare_collections(
                source, target, report, digested=digested, now=now, progress=progress
            )
            invariants = on_target.result()
            _compare_digested(
                source, target, report, source_digests, target_digests, now=now, progress=progress
            )
        except BaseException:
            stop.set()
            raise
    report.collections += view_differences(source.view_options(), target.view_options())
    progress.done()
    diffs = {diff.name: diff for diff in report.collections}
    report.invariants = invariants + copy_invariants(source, target, diffs)
    report.seconds = round(time.monotonic() - started, 3)
    return report


def _digested(source, target: LiveSide) -> set[str]:
    """The collections on both sides that the target's totals check reads in full (when it runs).

    Their documents are compared by count and ``ContentHash`` (the sum of each document's SHA-256):
    equal, the two sides hold the same documents byte for byte, bar a SHA-256 collision; different,
    the collection is merged in _id order like any other, to name what differs."""
    if not _totals_inputs() <= target.names():
        return set()
    return set(totals_collections(StudySession)) & source.names() & target.names()


def _compare_collections(
    source, target: LiveSide, report: VerifyReport, *, digested: set[str], now, progress: Progress
) -> dict[str, ContentHash]:
    """Each collection of either side: options, indexes, then the documents (a CollectionDiff
    each); of a ``digested`` collection only the source's hash, which this returns by name."""
    digests = {}
    for name in sorted(source.names() | target.names()):
        diff = CollectionDiff(name=name)
        report.collections.append(diff)
        in_source, in_target = name in source.names(), name in target.names()
        if not in_target:
            diff.option_differences.append("collection missing in the target")
        if not in_source:
            diff.option_differences.append("collection not in the source")
        if in_source and in_target:
            diff.option_differences = option_differences(source.options(name), target.options(name))
            diff.index_differences = index_differences(source.indexes(name), target.indexes(name))
        if name in digested:
            digests[name] = source.digest(name, progress)
        else:
            _merge_sides(source, target, diff, now=now, progress=progress)
    return digests


def _compare_digested(
    source,
    target: LiveSide,
    report: VerifyReport,
    source_digests: dict[str, ContentHash],
    target_digests: dict[str, ContentHash],
    *,
    now,
    progress: Progress,
) -> None:
    """Each digested collection: the same count and hash on both sides, or merged in _id order.
    A hash the target's pass did not finish (it is then missing) counts as different."""
    for diff in report.collections:
        if diff.name not in source_digests:
            continue
        ours, theirs = source_digests[diff.name], target_digests.get(diff.name)
        if theirs is not None and (ours.count, ours.hexdigest()) == (theirs.count, theirs.hexdigest()):
            diff.source_documents = diff.target_documents = ours.count
        else:
            _merge_sides(source, target, diff, now=now, progress=progress)


def _merge_sides(source, target: LiveSide, diff: CollectionDiff, *, now, progress: Progress) -> None:
    """The documents of ``diff``'s collection, both sides read in _id order and merged."""
    name = diff.name
    in_source, in_target = name in source.names(), name in target.names()
    # Either side's TTL indexes: the source's may expire what the target still holds, and back.
    ttl = ttl_fields(
        (source.indexes(name) if in_source else []) + (target.indexes(name) if in_target else [])
    )
    _merge(
        source.documents(name) if in_source else iter(()),
        target.documents(name) if in_target else iter(()),
        diff,
        ttl=ttl,
        now=now,
        progress=progress,
    )


def view_differences(source: dict[str, dict], target: dict[str, dict]) -> list[CollectionDiff]:
    """One row per view of either side: missing, extra, or defined otherwise (in meaning)."""
    rows = []
    for name in sorted(set(source) | set(target)):
        diff = CollectionDiff(name=name, view=True)
        if name not in target:
            diff.option_differences.append("view missing in the target")
        elif name not in source:
            diff.option_differences.append("view not in the source")
        else:
            diff.option_differences = option_differences(source[name], target[name])
        rows.append(diff)
    return rows


def _note(ids: list[str], value) -> None:
    if len(ids) < SHOWN_IDS:
        ids.append(repr(value))


def _keyed(documents: Iterator[bytes], side: str, name: str) -> Iterator[tuple[tuple, bytes]]:
    """(``_id`` order key, raw document), checking that the side really is sorted by _id."""
    previous = previous_raw = None
    for raw in documents:
        key = id_order_key(raw)
        if previous is not None and not previous < key:
            raise VerifyError(
                f"{name}: the {side} returned _id {document_id(raw)!r} after {document_id(previous_raw)!r}; "
                "its sort order is not MongoDB's, so the comparison cannot be trusted."
            )
        previous, previous_raw = key, raw
        yield key, raw


def _merge(source_docs, target_docs, diff: CollectionDiff, *, ttl, now, progress: Progress) -> None:
    """Walk both sides in _id order; two documents with the same _id must be equal byte for byte."""
    source_docs = _keyed(source_docs, "source", diff.name)
    target_docs = _keyed(target_docs, "target", diff.name)
    source, target = next(source_docs, None), next(target_docs, None)
    compared_bytes = 0
    while source is not None or target is not None:
        if target is None:
            order = -1
        elif source is None:
            order = 1
        elif source[1] == target[1]:  # identical documents: the usual case, no _id comparison
            order = 0
        else:
            order = -1 if source[0] < target[0] else (1 if target[0] < source[0] else 0)
        if order <= 0:
            diff.source_documents += 1
            compared_bytes += len(source[1])
        if order >= 0:
            diff.target_documents += 1
        if order == 0:
            if source[1] != target[1]:
                if ttl_expired(source[1], ttl, now) or ttl_expired(target[1], ttl, now):
                    diff.expired += 1
                    _note(diff.expired_ids, document_id(source[1]))
                else:
                    diff.different += 1
                    _note(diff.different_ids, document_id(source[1]))
        elif order < 0:
            if ttl_expired(source[1], ttl, now):
                diff.expired += 1
                _note(diff.expired_ids, document_id(source[1]))
            else:
                diff.missing += 1
                _note(diff.missing_ids, document_id(source[1]))
        elif ttl_expired(target[1], ttl, now):
            diff.expired += 1
            _note(diff.expired_ids, document_id(target[1]))
        else:
            diff.extra += 1
            _note(diff.extra_ids, document_id(target[1]))
        if order <= 0:
            source = next(source_docs, None)
        if order >= 0:
            target = next(target_docs, None)
        progress.update(diff.name, diff.source_documents, compared_bytes)


def ttl_fields(indexes: list[dict]) -> list[tuple[str, float]]:
    """(field, seconds) of each TTL index among ``indexes``, once each."""
    return sorted(
        {
            (next(iter(index["key"])), float(index["expireAfterSeconds"]))
            for index in indexes
            if "expireAfterSeconds" in index and len(index["key"]) == 1
        }
    )


def ttl_expired(raw: bytes, ttl, now: datetime) -> bool:
    """Whether a TTL index (``ttl``) would already have removed the document ``raw``: expired, on either side."""
    if not ttl:
        return False
    decoded = bson.decode(bytes(raw), DECODE)
    for path, seconds in ttl:
        value = decoded
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        dates = [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, datetime)]
        if dates and min(dates) + timedelta(seconds=seconds) <= now:
            return True
    return False


def index_differences(source: list[dict], target: list[dict]) -> list[str]:
    wanted = {index["name"]: index for index in source}
    present = {index["name"]: index for index in target}
    differences = []
    for name in sorted(set(wanted) | set(present)):
        if name not in present:
            differences.append(f"index {name} missing in the target")
        elif name not in wanted:
            differences.append(f"index {name} not in the source")
        elif not same_index(wanted[name], present[name]):
            differences.append(
                f"index {name} differs: source {_shown(index_spec(wanted[name]))}, "
                f"target {_shown(index_spec(present[name]))}"
            )
    return differences


def _shown(spec: dict) -> str:
    """An index spec as relaxed Extended JSON, in its own field order."""
    return json_util.dumps(spec, json_options=RELAXED_JSON_OPTIONS)


# -- domain invariants --------------------------------------------------------------------------
def target_invariants(
    target: LiveSide, *, stop: threading.Event | None = None, digests: dict[str, ContentHash] | None = None
) -> list[InvariantResult]:
    """The application's promises that the target alone must keep (gamification.invariants): points
    equal the ledger, the maintained totals equal the history; skipped when the collections are
    absent. ``stop`` set ends the totals' check before its next user (its result is then partial).

    The totals' pass already sums each user's ledger beside their points, so the first promise
    is read off it; it has a query of its own (``ledger_check``) only when that pass cannot run.

    ``digests`` (ContentHash by collection name) get every document of their collection as that
    pass reads it; when it does not read them all (skipped, failed, stopped) they are removed."""
    names = target.names()
    users, ledger = users_collection(), ledger_collection()
    totals_result, check = _totals_invariant(target, names, stop=stop, digests=digests or {})
    label = "points equal the ledger"
    if not {users, ledger} <= names:
        return [InvariantResult(label, "skipped", f"{users} or {ledger} is not in the target"), totals_result]
    if check is None:
        check = ledger_check(target.db)
    wrong = check.off_ledger
    ledger_result = InvariantResult(
        label,
        "failed" if wrong else "ok",
        f"{len(wrong)} of {check.users} users differ (first: {', '.join(wrong[:SHOWN_IDS])})"
        if wrong
        else f"{check.users} users",
    )
    return [ledger_result, totals_result]


def copy_invariants(
    source, target: LiveSide, diffs: dict[str, CollectionDiff] | None = None
) -> list[InvariantResult]:
    """The same documents per user on both sides, per per-user model; skipped when a collection is
    not on both sides.

    A per-user count needs no query when ``diffs`` shows the collection holds the very same
    documents on both sides, byte for byte: the counts cannot differ then.
    """
    diffs = diffs or {}
    results = []
    names = target.names()
    for model in PER_USER_MODELS:
        name = model._meta.db_table
        label = f"{name} per user"
        if name not in names or name not in source.names():
            results.append(InvariantResult(label, "skipped", f"{name} is not on both sides"))
            continue
        diff = diffs.get(name)
        if diff is not None and not (diff.missing or diff.extra or diff.different or diff.expired):
            results.append(
                InvariantResult(label, "ok", f"{diff.target_documents} documents, the source's byte for byte")
            )
            continue
        source_counts, target_counts = source.count_by_user(model), target.count_by_user(model)
        wrong = count_differences(source_counts, target_counts)
        results.append(
            InvariantResult(
                label,
                "failed" if wrong else "ok",
                f"{len(wrong)} user(s) with other counts than in the source (first: {', '.join(wrong[:SHOWN_IDS])})"
                if wrong
                else f"{sum(target_counts.values())} documents over {len(target_counts)} users",
            )
        )
    return results


def _totals_inputs() -> set[str]:
    """The collections without which the totals check cannot run: users, ledger, sessions."""
    return {users_collection(), ledger_collection(), StudySession._meta.db_table}


def _totals_invariant(
    target: LiveSide, names: set[str], *, stop: threading.Event | None, digests: dict[str, ContentHash]
) -> tuple[InvariantResult, TotalsCheck | None]:
    """The maintained totals (study totals, week points, progress) against the target's own
    sessions and ledger, and the check they came from (None when it could not run): a dump taken
    before they existed fails here until ``manage.py recompute_totals --fix`` has run on the target."""
    name = "maintained totals equal the history"
    needed = _totals_inputs()
    if not needed <= names:
        digests.clear()
        return InvariantResult(
            name, "skipped", f"{', '.join(sorted(needed - names))} not in the target"
        ), None

    def seen(collection: str, batch: bytes) -> None:
        if collection in digests:
            digests[collection].add_batch(batch)

    try:
        check = totals_check(
            target.db, sessions_model=StudySession, stop=stop, on_batch=seen if digests else None
        )
    except (KeyError, TypeError, AttributeError) as exc:  # a document without a field the rules need
        digests.clear()
        return InvariantResult(name, "failed", f"a document lacks a field the totals need: {exc}"), None
    finally:
        if stop is not None and stop.is_set():
            digests.clear()
    if check.off:
        return InvariantResult(
            name, "failed", f"{check.summary()}: run manage.py recompute_totals --fix"
        ), check
    return InvariantResult(name, "ok", check.summary()), check


# -- the report for people ----------------------------------------------------------------------
def format_report(report: VerifyReport) -> str:
    """A table that can be read at a glance, then the details of each difference."""
    lines = [
        f"source: {report.source} (database {report.source_db})",
        f"target: {report.target} (database {report.target_db})",
        "",
        f"{'collection':<34} {'source':>8} {'target':>8} {'missing':>8} {'extra':>6} {'differ':>7} "
        f"{'expired':>8}  indexes  options",
    ]
    for diff in report.collections:
        options = "ok" if not diff.option_differences else "DIFF"
        if diff.view:
            lines.append(
                f"{diff.name:<34} {'(view)':>8} {'':>8} {'':>8} {'':>6} {'':>7} {'':>8}  {'':<7}  {options}"
            )
            continue
        lines.append(
            f"{diff.name:<34} {diff.source_documents:>8} {diff.target_documents:>8} {diff.missing:>8} "
            f"{diff.extra:>6} {diff.different:>7} {diff.expired:>8}  "
            f"{'ok' if not diff.index_differences else 'DIFF':<7}  {options}"
        )
    details = []
    for diff in report.collections:
        for label, ids in (
            ("missing in the target", diff.missing_ids),
            ("extra in the target", diff.extra_ids),
            ("different", diff.different_ids),
            ("expired by TTL on either side (not a difference)", diff.expired_ids),
        ):
            if ids:
                details.append(f"  {diff.name}: {label}, first _ids: {', '.join(ids)}")
        details += [f"  {diff.name}: {text}" for text in diff.index_differences + diff.option_differences]
    if details:
        lines += ["", "Differences:", *details]
    lines += ["", "Invariants on the target:"]
    lines += [f"  [{item.status:^7}] {item.name}: {item.detail}" for item in report.invariants]
    lines += [
        "",
        left_out_sentence(report.excluded, "compared"),
        f"{report.documents} source documents compared in {report.seconds:.1f}s.",
        "RESULT: IDENTICAL" if report.identical else "RESULT: DIFFERENCES FOUND",
    ]
    return "\n".join(lines)


def write_report_json(report: VerifyReport, path: Path) -> None:
    """The report as JSON, for scripts (``--json``)."""
    with open_private(Path(path), "w") as stream:
        stream.write(json.dumps(report.to_dict(), indent=2, default=str) + "\n")


# -- verify_migration ------------------------------------------------------------------------------
def verify_run(
    *,
    source_uri: str | None,
    target_uri: str | None,
    db: str | None,
    target_db: str | None,
    dump: str | None,
    progress: Progress,
    audit: Audit,
    announce: Callable[[str], object] = print,
    warn: Callable[[str], object] = print,
    json_path: str | None = None,
    source_db: str | None = None,
    spool_dir: str | None = None,
    max_ops_per_second: float | None = None,
) -> VerifyReport:
    """verify_migration: compare the target with the live source, or with ``dump``; recorded in the target.

    Sides: the target is ``target_uri`` or ATLAS_MONGODB_URI, database ``target_db`` or
    MONGODB_DB_NAME (the one the application will read); the source ``source_uri`` or
    LOCAL_MONGODB_URI, database ``db`` or MONGODB_DB_NAME, or ``dump``: a folder, an archive
    file, or "-" (an archive on standard input), with ``source_db`` picking one database of a dump
    that holds several and ``spool_dir`` where a piped or gzipped archive is copied (its database:
    ``db`` or the dump's). Never MONGODB_URI. ``announce`` is told first what the run reads (and
    of a temporary copy), then the report (also written to ``json_path``); ``warn`` hears what a
    dump may have changed. ``max_ops_per_second`` paces each server (runs.pace_for). Raises
    CommandError: exit 2 when a side is not named or cannot be reached (the target is checked
    first), the dump cannot be read as asked, or the comparison cannot be trusted; exit 1 for the
    same database on both sides, a damaged dump, a side that does not exist or holds no data, and,
    after the report, for differences.
    """
    target_uri, target_name = named_target(target_uri, option="--target-uri", command="verify_migration")
    target_db = target_db or settings.MONGODB_DB_NAME
    audit.target, audit.database = target_uri, target_db
    if dump:
        source_side = f"the dump {dump_label(dump, None)}"
    else:
        source_uri, source_name = named_source(source_uri, option="--source-uri", command="verify_migration")
        source_db, source_label = db or settings.MONGODB_DB_NAME, redact(source_uri)
        source_side = where(source_uri, source_db, source_name)
        if same_database(source_uri, source_db, target_uri, target_db):
            raise refuse(
                f"The source and the target are the same database ({where(target_uri, target_db, target_name)}): "
                "comparing it with itself proves nothing. Name the local source with --source-uri or "
                "LOCAL_MONGODB_URI, and the Atlas target with --target-uri or ATLAS_MONGODB_URI."
            )
    audit.source = dump_label(dump, None) if dump else source_uri
    announce(
        f"verify_migration: reads {source_side} and {where(target_uri, target_db, target_name)}; writes only "
        "its audit record, in the target's database."
    )
    with contextlib.ExitStack() as stack:
        target_client = paced_client(target_uri, name=target_name, max_ops_per_second=max_ops_per_second)
        stack.callback(target_client.close)
        # Before the audit record, which would create a database that a typo names.
        if not holds_data(target_client[target_db]):
            raise refuse(
                f"The target database {target_db!r} on {redact(target_uri)} "
                f"{describe_emptiness(target_client[target_db])}: nothing to compare; check --target-db "
                "(default MONGODB_DB_NAME) and that the import ran."
            )
        with audit.recording(target_client[target_db], location=f"database {target_db} of the target"):
            if dump:
                piped = dump == "-"
                source = stack.enter_context(
                    dump_source(
                        path=None if piped else dump,
                        archive="-" if piped else None,
                        source_db=source_db,
                        spool_dir=spool_dir,
                        say=announce,
                        path_option="--dump",
                        refused="Refused",
                    )
                )
                for text in source.warnings:
                    warn(f"warning: {text}")
                source_db, source_label = db or source.db_name, dump_label(dump, None)
            else:
                source_client = paced_client(
                    source_uri, name=source_name, max_ops_per_second=max_ops_per_second
                )
                stack.callback(source_client.close)
                source = LiveSide(source_client[source_db])
                if not holds_data(source.db):
                    raise refuse(
                        f"The source database {source_db!r} on {redact(source_uri)} "
                        f"{describe_emptiness(source.db)}; check --db and {source_name}."
                    )
            try:
                report = verify(
                    source,
                    target_client[target_db],
                    source_label=source_label,
                    target_label=redact(target_uri),
                    source_db=source_db,
                    progress=progress,
                )
            except DamagedDumpError as exc:
                raise refuse(f"Refused: {exc}") from None
            except VerifyError as exc:
                raise cannot_run(str(exc)) from None
            audit.counts = {
                c.name: {
                    "source": c.source_documents,
                    "target": c.target_documents,
                    "missing": c.missing,
                    "extra": c.extra,
                    "different": c.different,
                    "expired": c.expired,
                }
                for c in report.collections
            }
            if json_path:
                write_report_json(report, json_path)
            announce(format_report(report))
            refuse_differences(report)
    return report


def refuse_differences(report: VerifyReport) -> None:
    """Exit 1 when the target differs from the source (after the report is shown)."""
    if not report.identical:
        raise refuse("verify_migration: the target differs from the source (see the report above).")
