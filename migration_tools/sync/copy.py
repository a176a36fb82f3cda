"""The initial copy of a live sync: every collection of the source, options and indexes included.

As import_atlas does it, and with its code: each collection is created with the source's
options, documents go in batches sized by bytes, and indexes are built after the data. The
documents are merged with what the target already holds, both sides read in ``_id`` order:
identical documents are skipped, different ones replaced, ones the source lacks deleted. So
a rerun after a crash carries on with nothing doubled, and ``--restart`` brings an earlier
copy back to the source's content. The source keeps changing meanwhile; the change events
recorded before the copy began correct that afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

from bson.raw_bson import RawBSONDocument
from pymongo import DeleteOne, InsertOne, ReplaceOne
from pymongo.errors import BulkWriteError, OperationFailure

from migration_tools.bsonfiles import RAW, id_order_key, split_documents
from migration_tools.dump import SORTED_BY_ID, CollectionFiles, collection_metadata, list_dumpable
from migration_tools.restore import (
    BATCH_BYTES,
    BATCH_DOCUMENTS,
    DUPLICATE_KEY,
    CollectionImport,
    import_indexes,
    import_view,
    option_differences,
    views_in_creation_order,
)
from migration_tools.sync.apply import Pacer, RefreshSet, bulk_write, id_key


class CopyInterrupted(Exception):
    """A stop was asked for between two batches of the copy."""


@dataclass
class CollectionCopy:
    """What the copy did to one collection (saved in the sync state)."""

    name: str
    done: bool = False
    created: bool = False
    read: int = 0
    inserted: int = 0
    replaced: int = 0
    deleted: int = 0
    identical: int = 0
    option_differences: list[str] = field(default_factory=list)
    indexes_created: list[str] = field(default_factory=list)
    indexes_pending: list[str] = field(default_factory=list)

    def to_state(self) -> dict:
        return asdict(self)


@dataclass
class SourceSize:
    data_bytes: int
    index_bytes: int
    documents: dict[str, int]  # estimated, per collection

    @property
    def total_bytes(self) -> int:
        return self.data_bytes + self.index_bytes


def source_collections(db) -> list[dict]:
    """The source's collections to copy, sorted by name: its data collections, not views."""
    return list_dumpable(db)


def source_size(db, infos: list[dict]) -> SourceSize:
    """Data and index bytes (uncompressed, as Atlas counts its quota) and document counts.

    ``collStats`` per collection (SecantusDB's ``$collStats`` reports 0 bytes: pinned in
    studymaster/tests/test_deviations.py); ``$collStats`` where the command is gone.
    """
    data = indexes = 0
    documents = {}
    for info in infos:
        try:
            stats = db.command("collStats", info["name"])
        except OperationFailure:
            stats = next(db[info["name"]].aggregate([{"$collStats": {"storageStats": {}}}]), {})
            stats = stats.get("storageStats") or {}
        data += int(stats.get("size", 0))
        indexes += int(stats.get("totalIndexSize", 0))
        documents[info["name"]] = int(stats.get("count", 0))
    return SourceSize(data, indexes, documents)


def documents_by_id(collection, pacer: Pacer | None = None) -> Iterator[tuple[tuple, memoryview]]:
    """(``_id`` order key, raw document) in ``_id`` order, one server batch at a time (each batch
    paced by ``pacer``, for the target)."""
    batches = collection.find_raw_batches({}, **SORTED_BY_ID)
    while True:
        if pacer is not None:
            pacer.take()
        batch = next(batches, None)
        if batch is None:
            return
        for raw in split_documents(batch):
            yield id_order_key(raw), raw


def copy_collection(
    source_db,
    target_db,
    info: dict,
    *,
    pacer: Pacer,
    refresh: RefreshSet,
    batch_bytes: int = BATCH_BYTES,
    on_batch: Callable[[CollectionCopy], None] = lambda copy: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> CollectionCopy:
    """Copy one collection; raises CopyInterrupted between batches when ``should_stop()``."""
    name = info["name"]
    files = CollectionFiles(name, None, None, collection_metadata(source_db, info))
    result = CollectionCopy(name=name)
    existing = next(iter(target_db.list_collections(filter={"name": name})), None)
    pacer.take()
    if existing is None:
        pacer.take()
        target_db.command({"create": name, **files.options})
        result.created = True
    else:
        result.option_differences = option_differences(files.options, dict(existing.get("options") or {}))
    _merge_documents(
        source_db[name],
        target_db.get_collection(name, codec_options=RAW),
        result,
        pacer=pacer,
        refresh=refresh,
        batch_bytes=batch_bytes,
        on_batch=on_batch,
        should_stop=should_stop,
    )
    build_indexes(target_db, files, result, pacer=pacer)
    result.done = True
    return result


@dataclass
class SourceView:
    """A view of the source as listCollections describes it (what import_view needs)."""

    name: str
    options: dict


def copy_views(source_db, target_db, *, pacer: Pacer) -> list[str]:
    """Create the source's views on the target as import_atlas does: by their definition, each
    after the view it reads, after the collections. A view already there with the same definition
    is left alone; one with another definition (or a collection of that name) is left untouched
    and named in the problems returned, so the verification reports it too."""
    views = {
        info["name"]: SourceView(info["name"], dict(info.get("options") or {}))
        for info in list_dumpable(source_db, views=True)
        if info.get("type") == "view"
    }
    existing = {info["name"]: info for info in target_db.list_collections()}
    problems = []
    for view in views_in_creation_order(views):
        pacer.take()
        result = import_view(target_db, view, existing, drop=False, dry_run=False)
        problems += [f"view {view.name}: {difference}" for difference in result.option_differences]
    return problems


def build_indexes(target_db, files: CollectionFiles, result: CollectionCopy, *, pacer: Pacer) -> None:
    """Build the source's indexes after the data (import's code); a refused one stays pending.

    A unique index can be refused while the copy still holds documents read at different
    moments (a value that moved between two documents); it is built again once caught up.
    """
    imported = CollectionImport(name=files.name)
    pacer.take(2)
    import_indexes(
        target_db, files, imported, recreate_different=False, dry_run=False, missing_collection=False
    )
    result.indexes_created += imported.indexes_created
    result.indexes_pending = imported.indexes_conflicting


def _merge_documents(
    source, target, result: CollectionCopy, *, pacer, refresh, batch_bytes, on_batch, should_stop
):
    source_docs, target_docs = documents_by_id(source), documents_by_id(target, pacer)
    here, there = next(source_docs, None), next(target_docs, None)
    writes, size = [], 0  # [(operation, id key)]
    while here is not None or there is not None:
        if there is None or (here is not None and here[0] < there[0]):
            document = RawBSONDocument(bytes(here[1]), RAW)
            writes.append((InsertOne(document), id_key(document)))
            size += len(here[1])
            result.read += 1
            here = next(source_docs, None)
        elif here is None or there[0] < here[0]:
            extra = RawBSONDocument(bytes(there[1]), RAW)
            writes.append((DeleteOne({"_id": extra["_id"]}), id_key(extra)))
            there = next(target_docs, None)
        else:
            result.read += 1
            if here[1] == there[1]:
                result.identical += 1
            else:
                document = RawBSONDocument(bytes(here[1]), RAW)
                writes.append((ReplaceOne({"_id": document["_id"]}, document), id_key(document)))
                size += len(here[1])
            here, there = next(source_docs, None), next(target_docs, None)
        if writes and (size >= batch_bytes or len(writes) >= BATCH_DOCUMENTS):
            _write(target, writes, result, pacer=pacer, refresh=refresh)
            writes, size = [], 0
            on_batch(result)
            if should_stop():
                raise CopyInterrupted()
    if writes:
        _write(target, writes, result, pacer=pacer, refresh=refresh)
    on_batch(result)


def _write(target, writes: list, result: CollectionCopy, *, pacer: Pacer, refresh: RefreshSet) -> None:
    pacer.take(len({type(operation) for operation, _ in writes}))
    failed = set()
    try:
        bulk_write(target, [operation for operation, _ in writes], ordered=False)
    except BulkWriteError as exc:
        if exc.details.get("writeConcernErrors"):
            raise
        for error in exc.details.get("writeErrors", []):
            if error.get("code") != DUPLICATE_KEY:
                raise OperationFailure(
                    f"{target.name}: {error.get('errmsg', 'write error')}", error.get("code")
                ) from None
            # Another document holds this one's value of a unique index for now: write it again later.
            failed.add(error["index"])
            refresh.add(target.name, writes[error["index"]][1])
    for index, (operation, _) in enumerate(writes):
        if index in failed:
            continue
        if isinstance(operation, InsertOne):
            result.inserted += 1
        elif isinstance(operation, ReplaceOne):
            result.replaced += 1
        else:
            result.deleted += 1
