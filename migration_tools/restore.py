"""Checked, resumable import of a dump (ours or mongodump's, a folder or an archive) into a target
database.

Order of work: check the whole dump (checksums, framing) before the first write; settle the
rollback snapshot (migration_tools.snapshots); with ``--drop``, make the dump's collections hold
the dump's documents alone; create collections with their options; insert in batches sized by
bytes; recreate indexes after the data; then the views, each after the view it reads. The
migration tools' own collections are never imported, whatever the dump holds.

Inserts are unordered and idempotent: a document whose ``_id`` is already present is
compared byte for byte with the target's copy. Identical means it was imported by an
earlier, interrupted run and is skipped; different is a conflict, reported and never
overwritten. So running the same import again after a crash completes it with nothing
lost and nothing duplicated.

``--drop`` replaces in place rather than dropping: one pass over the target in ``_id`` order,
merged with the dump, deletes what the dump does not hold as it is, and the insert pass then
writes what is missing. A document the dump holds unchanged is never rewritten, and the
collection is never empty half-way. (Dropping made the embedded server delete every row and
index entry one durable commit at a time, then rebuild every index: a restore of 7,000
documents over the same data took eight times the first import; docs/performance.md.) Only a
collection whose options differ from the dump's is dropped and created again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import bson
from bson.raw_bson import RawBSONDocument
from django.conf import settings
from pymongo import MongoClient
from pymongo.errors import BulkWriteError, OperationFailure

from migration_tools.archive import dump_label, dump_source
from migration_tools.bsonfiles import (
    RAW,
    DamagedDumpError,
    bson_compare,
    bson_rank,
    document_id,
    id_order_key,
    split_documents,
)
from migration_tools.dump import (
    SORTED_BY_ID,
    CollectionFiles,
    DiskFullError,
    Dump,
    sorted_documents,
)
from migration_tools.options import comparable_option, same_options
from migration_tools.progress import Progress
from migration_tools.runs import Audit, cannot_run, named_target, paced_client, refuse, same_database, where
from migration_tools.snapshots import Snapshot, SnapshotRefused, settle_snapshot
from studymaster.mongo import redact
from studymaster.reading import prefetched
from studymaster.tools_collections import is_data_collection

BATCH_BYTES = 8 * 1024 * 1024
BATCH_DOCUMENTS = 5000
EMPTY_COLLECTIONS_IN_FLIGHT = 4
SHOWN_IDS = 5
DUPLICATE_KEY = 11000
# Index fields that describe the build, not the index; they do not make two indexes different.
INDEX_NOISE = {"v", "ns", "background"}
# IndexOptionsConflict, IndexKeySpecsConflict, and duplicate values under a unique index.
INDEX_CONFLICT_CODES = {85, 86, DUPLICATE_KEY}


@dataclass
class CollectionImport:
    name: str
    dump_documents: int = 0
    inserted: int = 0
    identical: int = 0
    conflicts: int = 0
    conflict_ids: list[str] = field(default_factory=list)
    created: bool = False
    dropped: bool = False  # --drop on a collection whose options differ: dropped and created again
    replaced: bool = False  # --drop on the others: replaced in place
    deleted: int = 0  # by --drop: documents the dump does not hold as they are
    option_differences: list[str] = field(default_factory=list)
    indexes_created: list[str] = field(default_factory=list)
    indexes_conflicting: list[str] = field(default_factory=list)
    indexes_dropped: list[str] = field(default_factory=list)  # by --drop: the dump lacks them as they are
    view_on: str | None = None  # a view: no documents, no indexes, its definition in its options


@dataclass
class ImportReport:
    dump_db: str
    target_db: str
    checksums_checked: bool
    dry_run: bool = False
    indexes_only: bool = False
    snapshot: Snapshot | None = None
    collections: list[CollectionImport] = field(default_factory=list)
    not_imported: list[str] = field(default_factory=list)  # the tools' own collections in the dump

    @property
    def conflicts(self) -> int:
        """Documents, indexes and collection options that differ from the dump and were left alone."""
        return sum(
            c.conflicts + len(c.indexes_conflicting) + len(c.option_differences) for c in self.collections
        )

    @property
    def inserted(self) -> int:
        return sum(c.inserted for c in self.collections)

    @property
    def identical(self) -> int:
        return sum(c.identical for c in self.collections)


def index_spec(index: dict) -> dict:
    """An index definition without the fields that do not change what it is."""
    return {key: value for key, value in dict(index).items() if key not in INDEX_NOISE}


def same_index(a: dict, b: dict) -> bool:
    """Whether two index definitions describe the same index (key order counts; see options.py)."""
    return same_options(index_spec(a), index_spec(b))


def _id_key(document: RawBSONDocument) -> bytes:
    """The exact bytes of a document's ``_id`` (so 1 and Int64(1) are told apart)."""
    return bson.encode({"_id": document["_id"]})


# import_dump(snapshot_dir=AUTO_SNAPSHOT): a time-stamped folder beside the dump, or this import's
# standing snapshot wherever it is.
AUTO_SNAPSHOT = Path("<beside the dump>")


def import_dump(
    client: MongoClient,
    dump: Dump,
    *,
    target_db: str,
    target_uri: str,
    drop: bool = False,
    dry_run: bool = False,
    indexes_only: bool = False,
    snapshot_dir: Path | None = None,
    progress: Progress | None = None,
    batch_bytes: int = BATCH_BYTES,
) -> ImportReport:
    """Import ``dump`` (a folder's Dump or an archive's ArchiveDump) into ``target_db``; see the
    module docstring for the guarantees.

    ``snapshot_dir``: where the rollback snapshot goes (AUTO_SNAPSHOT: beside the dump; None:
    no snapshot). Raises DamagedDumpError before any write when the dump is damaged,
    SnapshotRefused and DiskFullError before any write when the snapshot cannot be taken as
    asked. PyMongo errors propagate. Conflicts do not raise: they are counted in the report.
    """
    progress = progress or Progress()
    checked = dump.check(progress=progress)
    db = client[target_db]
    report = ImportReport(
        dump_db=dump.db_name,
        target_db=target_db,
        checksums_checked=dump.checksums_checked,
        dry_run=dry_run,
        indexes_only=indexes_only,
    )
    if not dry_run and not indexes_only and snapshot_dir is not None:
        report.snapshot = settle_snapshot(
            client,
            dump,
            target_db=target_db,
            target_uri=target_uri,
            snapshot_dir=None if snapshot_dir is AUTO_SNAPSHOT else snapshot_dir,
            progress=progress,
        )
    existing = {info["name"]: info for info in db.list_collections()}
    report.not_imported = [name for name in [*dump.collections, *dump.views] if not is_data_collection(name)]
    names = [name for name in dump.collections if is_data_collection(name)]
    each = {"drop": drop, "dry_run": dry_run, "indexes_only": indexes_only, "batch_bytes": batch_bytes}
    # Collections without documents cost a round trip or two and almost no server work: they go
    # alongside, a few at a time, while the others are imported one after the other (in parallel
    # these contend for the server: measured slower, docs/performance.md).
    empty = [name for name in names if checked[name]["documents"] == 0]
    with ThreadPoolExecutor(max_workers=EMPTY_COLLECTIONS_IN_FLIGHT) as pool:
        alongside = {
            name: pool.submit(
                _import_collection,
                db,
                dump.collections[name],
                existing.get(name),
                total=0,
                progress=Progress(),
                **each,
            )
            for name in empty
        }
        results = {
            name: _import_collection(
                db,
                dump.collections[name],
                existing.get(name),
                total=checked[name]["documents"],
                progress=progress,
                **each,
            )
            for name in names
            if name not in alongside
        }
        results.update({name: future.result() for name, future in alongside.items()})
    report.collections = [results[name] for name in names]
    if not indexes_only:
        views = {name: view for name, view in dump.views.items() if is_data_collection(name)}
        for view in views_in_creation_order(views):
            report.collections.append(import_view(db, view, existing, drop=drop, dry_run=dry_run))
    progress.done()
    return report


def _import_collection(
    db, files, present: dict | None, *, drop, dry_run, indexes_only, batch_bytes, progress, total: int
) -> CollectionImport:
    """One collection: replaced in place (or dropped, when its options differ) with ``drop``,
    created with its options, its documents, its indexes.

    ``present`` is the target's listCollections entry for it, None when it is not there.
    """
    name = files.name
    result = CollectionImport(name=name)
    if present is not None:
        result.option_differences = option_differences(files.options, present.get("options") or {})
    if drop and present is not None and not indexes_only:
        if result.option_differences:
            result.dropped, result.option_differences = True, []
            if not dry_run:
                db.drop_collection(name)
            present = None
        else:
            result.replaced = True
            result.indexes_dropped = _drop_other_indexes(db, files, dry_run=dry_run)
            _delete_what_the_dump_lacks(db, files, result, dry_run=dry_run, batch_bytes=batch_bytes)
    if present is None:
        if indexes_only:
            result.option_differences = ["collection is missing in the target"]
            return result
        result.created = True
        if not dry_run:
            db.command({"create": name, **files.options})
    if not indexes_only and not (result.replaced and dry_run):
        _import_documents(
            db,
            files,
            result,
            dry_run=dry_run,
            batch_bytes=batch_bytes,
            progress=progress,
            fresh=result.created,
            total=total,
        )
    import_indexes(
        db,
        files,
        result,
        recreate_different=indexes_only or result.replaced,
        dry_run=dry_run,
        missing_collection=result.created,
    )
    return result


def views_in_creation_order(views: dict) -> list:
    """The views, each after the views it is defined on (a view may read another view)."""
    ordered, placed = [], set()
    pending = sorted(views.values(), key=lambda view: view.name)
    while pending:
        ready = [v for v in pending if v.options.get("viewOn") not in views or v.options["viewOn"] in placed]
        ready = ready or pending[:1]  # a cycle cannot be created anyway: let the server say so
        for view in ready:
            ordered.append(view)
            placed.add(view.name)
            pending.remove(view)
    return ordered


def import_view(db, view, existing: dict, *, drop: bool, dry_run: bool) -> CollectionImport:
    """Create a view as the dump defines it; one of the same definition counts as identical, any
    other (or a collection of that name) as a conflict, left untouched (``drop``: replaced)."""
    result = CollectionImport(name=view.name, view_on=view.options.get("viewOn"))
    present = existing.get(view.name)
    if present is not None and present.get("type") != "view":
        result.option_differences = [f"the target holds a {present.get('type', 'collection')}, not a view"]
    elif present is not None:
        result.option_differences = option_differences(view.options, present.get("options") or {})
    if drop and present is not None and result.option_differences:
        result.dropped, result.option_differences = True, []
        if not dry_run:
            db.drop_collection(view.name)
        present = None
    if present is None:
        result.created = True
        if not dry_run:
            db.command({"create": view.name, **view.options})
    return result


def _delete_what_the_dump_lacks(
    db, files: CollectionFiles, result: CollectionImport, *, dry_run, batch_bytes
):
    """``--drop`` in place: delete the target's documents the dump does not hold byte for byte.

    One pass over the target in ``_id`` order, merged with the dump's documents in ``_id`` order.
    With ``dry_run`` nothing is deleted and the counts of the insert pass are filled in from the
    merge (what it would insert: the dump's documents the target lacks or holds otherwise).
    """
    collection = db.get_collection(files.name, codec_options=RAW)
    dump_documents = sorted_documents(files)
    head = next(dump_documents, None)
    head_key = None if head is None else id_order_key(head)
    doomed, doomed_bytes, kept = [], 0, 0
    for batch in collection.find_raw_batches({}, **SORTED_BY_ID):
        for raw in split_documents(batch):
            key = id_order_key(raw)
            while head is not None and head_key < key:
                head = next(dump_documents, None)
                head_key = None if head is None else id_order_key(head)
            if head is not None and head_key == key and bytes(head) == bytes(raw):
                kept += 1
                continue
            doomed.append(document_id(raw))
            doomed_bytes += len(raw)
            if len(doomed) >= BATCH_DOCUMENTS or doomed_bytes >= batch_bytes:
                result.deleted += _delete(collection, doomed, dry_run=dry_run)
                doomed, doomed_bytes = [], 0
    result.deleted += _delete(collection, doomed, dry_run=dry_run)
    if dry_run:
        result.identical = kept
        result.dump_documents = sum(1 for _ in files.documents())
        result.inserted = result.dump_documents - kept


def _drop_other_indexes(db, files: CollectionFiles, *, dry_run: bool) -> list[str]:
    """``--drop`` in place: drop the target's indexes the dump lacks or defines otherwise.

    First, before any document moves: a unique index the dump lacks could refuse its documents.
    The insert pass's index step then creates the dump's.
    """
    wanted = {index["name"]: index for index in files.indexes}
    others = [
        index["name"]
        for index in db[files.name].list_indexes()
        if index["name"] != "_id_"
        and not (index["name"] in wanted and same_index(index, wanted[index["name"]]))
    ]
    if not dry_run:
        for name in others:
            db[files.name].drop_index(name)
    return others


def _delete(collection, ids: list, *, dry_run: bool) -> int:
    if ids and not dry_run:
        collection.delete_many({"_id": {"$in": ids}})
    return len(ids)


def option_differences(wanted: dict, actual: dict) -> list[str]:
    """Collection options (validator, collation, capped, ...) that differ in meaning, by name.

    Field order counts where MongoDB gives it meaning, not elsewhere (migration_tools.options).
    """
    names = sorted(set(wanted) | set(actual))
    return [
        f"{name}: dump {wanted.get(name)!r}, target {actual.get(name)!r}"
        for name in names
        if name not in wanted
        or name not in actual
        or comparable_option(name, wanted[name]) != comparable_option(name, actual[name])
    ]


def _batches(files: CollectionFiles, batch_bytes: int):
    batch, size = [], 0
    for raw in files.documents():
        if batch and (size + len(raw) > batch_bytes or len(batch) >= BATCH_DOCUMENTS):
            yield batch
            batch, size = [], 0
        batch.append(RawBSONDocument(raw, RAW))
        size += len(raw)
    if batch:
        yield batch


def _import_documents(
    db, files, result: CollectionImport, *, dry_run, batch_bytes, progress, fresh, total: int
) -> None:
    collection = db.get_collection(files.name, codec_options=RAW)
    done_bytes = 0
    # The next batch is read and framed while this one is written (migration_tools.reading).
    for batch in prefetched(_batches(files, batch_bytes)):
        result.dump_documents += len(batch)
        done_bytes += sum(len(doc.raw) for doc in batch)
        # A collection this run created holds nothing yet: insert straight away. Otherwise
        # (a rerun, a non-empty target) one read per batch finds what is already there.
        present = [] if fresh else _compare_existing(collection, batch, result)
        if present:
            present_ids = {id(doc) for doc in present}
            batch = [doc for doc in batch if id(doc) not in present_ids]
        if dry_run:
            result.inserted += len(batch)
        elif batch:
            _insert_batch(collection, batch, result)
        progress.update(files.name, result.dump_documents, done_bytes, total)


def _insert_batch(collection, batch: list[RawBSONDocument], result: CollectionImport) -> None:
    try:
        collection.insert_many(batch, ordered=False)
        result.inserted += len(batch)
        return
    except BulkWriteError as exc:
        if exc.details.get("writeConcernErrors"):
            raise  # written, but not known to be durable: exit 2; a rerun finds them identical
        errors = exc.details.get("writeErrors", [])
        others = [error for error in errors if error.get("code") != DUPLICATE_KEY]
        if others:
            raise OperationFailure(others[0].get("errmsg", "write error"), others[0].get("code")) from None
        result.inserted += exc.details.get("nInserted", 0)
        duplicates = [batch[error["index"]] for error in errors]
        present = _compare_existing(collection, duplicates, result)
        # A duplicate on another unique index: the _id is new, but the document clashes all the same.
        present_ids = {id(doc) for doc in present}
        for doc in (doc for doc in duplicates if id(doc) not in present_ids):
            result.conflicts += 1
            if len(result.conflict_ids) < SHOWN_IDS:
                result.conflict_ids.append(repr(doc["_id"]))


def _compare_existing(collection, batch: list[RawBSONDocument], result: CollectionImport) -> list:
    """Count the batch's documents already in the target: identical, or conflicts. Returns them.

    An ``_id`` equal in value but not in bytes (1 and Int64(1)) is the same key to the
    server, so it is present too, as a conflict.
    """
    found = {_id_key(doc): doc for doc in collection.find(_lookup_filter([doc["_id"] for doc in batch]))}
    present = []
    for doc in batch:
        existing = found.get(_id_key(doc))
        if existing is None and not any(
            bson_compare(doc["_id"], other["_id"]) == 0 for other in found.values()
        ):
            continue
        present.append(doc)
        if existing is not None and existing.raw == doc.raw:
            result.identical += 1
        else:
            result.conflicts += 1
            if len(result.conflict_ids) < SHOWN_IDS:
                result.conflict_ids.append(repr(doc["_id"]))
    return present


# _id types whose range queries select exactly what the sort order puts between the ends:
# strings, ObjectIds and dates (numbers only when all are integers: NaN does not range).
_RANGE_RANKS = {4, 8, 10}


def _lookup_filter(ids: list) -> dict:
    """A filter that finds every target document with one of ``ids``.

    A sorted batch of one type (our dumps are sorted by _id) is read as one _id range,
    which index scans serve faster than a long ``$in``; other batches use ``$in``.
    """
    ranks = {bson_rank(value) for value in ids}
    integers = all(isinstance(value, int) and not isinstance(value, bool) for value in ids)
    ascending = all(bson_compare(a, b) < 0 for a, b in zip(ids, ids[1:], strict=False))
    if len(ids) > 1 and len(ranks) == 1 and (ranks <= _RANGE_RANKS or integers) and ascending:
        return {"_id": {"$gte": ids[0], "$lte": ids[-1]}}
    return {"_id": {"$in": ids}}


def import_indexes(
    db, files, result: CollectionImport, *, recreate_different, dry_run, missing_collection
) -> None:
    """Create the indexes of ``files`` (a collection's metadata) in ``db`` that are missing there.

    An index present with another definition is recreated when ``recreate_different``, else
    listed in ``result.indexes_conflicting``; so is one the data refuses (a unique index over
    duplicates). ``result.indexes_created`` names the others. Import and the live sync use it.
    """
    wanted = [index for index in files.indexes if index.get("name") != "_id_"]
    current = {} if missing_collection else {index["name"]: index for index in db[files.name].list_indexes()}
    to_create = []
    for index in wanted:
        present = current.get(index["name"])
        if present is not None and same_index(present, index):
            continue
        if present is not None and not recreate_different:
            result.indexes_conflicting.append(index["name"])
            continue
        if present is not None and not dry_run:
            db[files.name].drop_index(index["name"])
        to_create.append(index_spec(index))
        result.indexes_created.append(index["name"])
    if not to_create or dry_run:
        return
    try:
        db.command({"createIndexes": files.name, "indexes": to_create})
    except OperationFailure as exc:
        if exc.code not in INDEX_CONFLICT_CODES:
            raise
        # One by one, to build the others and name the ones the target's content or indexes refuse.
        for spec in to_create:
            try:
                db.command({"createIndexes": files.name, "indexes": [spec]})
            except OperationFailure as one:
                if one.code not in INDEX_CONFLICT_CODES:
                    raise
                result.indexes_created.remove(spec["name"])
                result.indexes_conflicting.append(spec["name"])


def format_import_report(report: ImportReport, *, seconds: float, verbosity: int, target: str) -> str:
    """What an import did (or, with --dry-run, would do), per collection and in total."""
    lines = []
    verb = "would insert" if report.dry_run else "inserted"
    if report.snapshot is not None:
        lines.append(format_snapshot(report.snapshot))
    for item in report.collections:
        notes = []
        if item.dropped:
            notes.append("dropped first" if not report.dry_run else "would drop first")
        if item.replaced and item.deleted:
            would = "would be " if report.dry_run else ""
            notes.append(f"replaced in place: {item.deleted} {would}deleted (not in the dump as they are)")
        if item.indexes_dropped:
            notes.append(
                f"{'would drop' if report.dry_run else 'dropped'} indexes: {', '.join(item.indexes_dropped)}"
            )
        if item.created:
            notes.append("created" if not report.dry_run else "would create")
        if item.indexes_created:
            shown = ", ".join(item.indexes_created) if verbosity >= 2 else str(len(item.indexes_created))
            notes.append(f"{'would create' if report.dry_run else 'created'} indexes: {shown}")
        if item.conflicts:
            notes.append(f"CONFLICTS {item.conflicts} (first _ids: {', '.join(item.conflict_ids)})")
        if item.indexes_conflicting:
            notes.append("INDEXES DIFFER " + ", ".join(item.indexes_conflicting) + " (see --indexes-only)")
        notes += [f"option differs: {text}" for text in item.option_differences]
        if verbosity >= 2 or notes or item.inserted:
            if item.view_on is not None:
                counts = f"{'view on ' + item.view_on:<40}"
            elif report.indexes_only:
                counts = ""
            else:
                counts = f"{verb} {item.inserted:>7}, already identical {item.identical:>7}"
            lines.append(f"  {item.name:<36} {counts}  {'; '.join(notes)}".rstrip())
    documents = report.inserted + report.identical
    checked = (
        "every checksum and the BSON framing checked"
        if report.checksums_checked
        else ("BSON framing checked; no checksum (no manifest)")
    )
    prefix = "DRY RUN, nothing written: " if report.dry_run else ""
    if report.indexes_only:
        created = sum(len(item.indexes_created) for item in report.collections)
        lines.append(
            f"{prefix}{created} indexes {'would be ' if report.dry_run else ''}created or rebuilt in "
            f"{target} database {report.target_db} in {seconds:.1f}s; documents untouched."
        )
        return "\n".join(lines)
    deleted = sum(item.deleted for item in report.collections)
    lines.append(
        f"{prefix}{report.inserted} documents {verb}, {report.identical} already identical, "
        f"{f'{deleted} deleted by --drop, ' if deleted else ''}{report.conflicts} conflicts, into {target} "
        f"database {report.target_db} in {seconds:.1f}s ({documents / max(seconds, 1e-6):.0f} documents/s); "
        f"{checked}."
    )
    if report.not_imported:
        lines.append(
            f"Not imported: {', '.join(report.not_imported)} (the migration tools' own: each database keeps its own)."
        )
    return "\n".join(lines)


def format_snapshot(snapshot: Snapshot) -> str:
    """The report's line on the rollback point: where it is, and what rolling back means."""
    if snapshot.target_was_empty:
        first = "the first run of " if snapshot.reused else ""
        return (
            f"The target held no data before {first}this import: rolling back means dropping the "
            f"collections it created (marker in {snapshot.path})"
        )
    if snapshot.reused:
        return f"Rollback snapshot kept from an earlier run of this import: {snapshot.path}"
    why = f": {snapshot.superseded}" if snapshot.superseded else ""
    return f"Rollback snapshot of the target written to {snapshot.path}{why}"


# -- import_atlas -----------------------------------------------------------------------------------
def refuse_local_source_as_target(uri: str, target_db: str) -> None:
    """Refuse (exit 1) a target that is the local source itself: its server and its database."""
    if same_database(uri, target_db, settings.LOCAL_MONGODB_URI, settings.MONGODB_DB_NAME):
        raise refuse(
            f"The target {redact(uri)} database {target_db} is the local source itself "
            "(LOCAL_MONGODB_URI); name the Atlas cluster with --uri or ATLAS_MONGODB_URI."
        )


@dataclass
class ImportRun:
    report: ImportReport
    seconds: float


def import_run(
    *,
    source: str | None,
    archive: str | None,
    source_db: str | None,
    collections: list[str] | None,
    spool_dir: str | None,
    uri: str | None,
    db: str | None,
    drop: bool,
    yes: bool,
    dry_run: bool,
    no_snapshot: bool,
    snapshot_dir: Path | None,
    indexes_only: bool,
    progress: Progress,
    audit: Audit,
    warn: Callable[[str], object],
    announce: Callable[[str], object] = print,
    verbosity: int = 1,
    max_ops_per_second: float | None = None,
) -> ImportRun:
    """import_atlas: check the request and the dump, import it, record the run in the target.

    The dump is ``source`` (a folder, or a file read as an archive) or ``archive`` (a file, or
    "-" for standard input), read and checked whole first (archive.dump_source), limited to
    ``collections``; ``source_db`` picks one database of a dump that holds several, and a piped
    or gzipped archive is copied to ``spool_dir`` (default: the system's temporary folder). The
    target is ``uri`` or ATLAS_MONGODB_URI (never MONGODB_URI), the database ``db`` or
    MONGODB_DB_NAME, the one the application will read. ``announce`` is told first what the run
    reads and writes (and of a temporary copy), then (``verbosity`` 1 or more) the report;
    ``warn`` is told of what the dump lacks or may have changed. ``max_ops_per_second`` paces
    the target (runs.pace_for). Raises CommandError: exit 1 for --drop without --yes, a damaged
    dump, an unknown database or collection, an unsafe target or a snapshot that cannot be taken
    as asked (nothing written); exit 2 when no target is named or it cannot be reached, the dump
    cannot be read as asked, or the disk fills up with the snapshot; exit 1 after the report
    when the import left conflicts.
    """
    if drop and not yes and not dry_run:
        raise refuse("--drop replaces the dump's collections in the target: add --yes to confirm.")
    uri, uri_name = named_target(uri, option="--uri", command="import_atlas")
    target_db = db or settings.MONGODB_DB_NAME
    label = dump_label(source, archive)
    audit.source, audit.target, audit.database = label, uri, target_db
    say = announce if verbosity >= 1 else (lambda text: None)
    with dump_source(
        path=source,
        archive=archive,
        source_db=source_db,
        collections=collections,
        spool_dir=spool_dir,
        say=say,
    ) as dump:
        say(
            f"import_atlas: reads the dump {label} (database {dump.db_name}) and writes "
            f"{where(uri, target_db, uri_name)}, where its audit record goes too."
        )
        refuse_local_source_as_target(uri, target_db)
        if not dump.checksums_checked:
            warn(
                f"warning: {dump.root} has no manifest.json (a mongodump folder?): no checksum could be "
                "checked; the BSON framing and every document were."
            )
        for text in dump.warnings:
            warn(f"warning: {text}")
        snapshot = None if no_snapshot else (snapshot_dir or AUTO_SNAPSHOT)
        client = paced_client(uri, name=uri_name, max_ops_per_second=max_ops_per_second)
        try:
            # A database the user has no right on is named by this read, before the audit record tries.
            client[target_db].list_collection_names()
            with audit.recording(client[target_db], location=f"database {target_db} of the target"):
                started = time.monotonic()
                try:
                    report = import_dump(
                        client,
                        dump,
                        target_db=target_db,
                        target_uri=uri,
                        drop=drop,
                        dry_run=dry_run,
                        indexes_only=indexes_only,
                        snapshot_dir=snapshot,
                        progress=progress,
                    )
                except (DamagedDumpError, SnapshotRefused) as exc:
                    raise refuse(f"Refused, nothing written: {exc}") from None
                except DiskFullError as exc:
                    raise cannot_run(f"disk full: the rollback snapshot: {exc}") from None
                seconds = time.monotonic() - started
                audit.counts = {
                    c.name: {
                        "inserted": c.inserted,
                        "identical": c.identical,
                        "conflicts": c.conflicts,
                        "deleted": c.deleted,
                    }
                    for c in report.collections
                }
                audit.checksums = {
                    name: item["content_hash"]
                    for name, item in ((dump.manifest or {}).get("collections") or {}).items()
                }
                if verbosity >= 1:
                    announce(
                        format_import_report(report, seconds=seconds, verbosity=verbosity, target=redact(uri))
                    )
                refuse_conflicts(report)
        finally:
            client.close()
    return ImportRun(report, seconds)


def refuse_conflicts(report: ImportReport) -> None:
    """Exit 1 when the import left conflicts in the target (after its report is shown)."""
    if report.conflicts:
        raise refuse(
            f"{report.conflicts} conflict(s): documents, indexes or collection options that exist in the "
            "target with other content were left untouched. Inspect them, then --drop --yes, "
            "--indexes-only (indexes) or fix the target."
        )
