"""Writing change events to the target, idempotently, in source order, under a rate limit.

Each event becomes a write that gives the same result however often it is applied:

- insert and replace write the whole document by ``_id`` (a replace with upsert);
- update writes the post-image the stream looked up; when that is gone (the document was
  deleted since, and its delete event follows) it applies ``updateDescription``: the fields
  set and removed, and the arrays truncated;
- delete removes by ``_id``.

So replaying events after a crash is harmless, and events that overlap the initial copy
correct it. Events go in ordered bulk writes per collection, each ``_id``'s changes in source
order; within a batch only each ``_id``'s last whole-document write is sent (see
:func:`coalesce`), deletes first.

A post-image is the document as it is *now*, not as it was after the event, so two updates
can briefly collide on a unique index (a value moved from one document to another), and two
documents that swapped values collide whichever goes first. Such a write is not lost: the
document goes to the refresh set, whose documents are re-read from the source after the
batch, deleted and inserted again (the deletes free the values), and kept in the saved state
until that succeeds.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import bson
from bson import Binary
from pymongo import DeleteOne, InsertOne, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError, OperationFailure

from migration_tools.bsonfiles import RAW
from migration_tools.restore import DUPLICATE_KEY, index_spec
from studymaster.retry import retry_idempotent

# Collection-level events after which the copy on the target no longer matches the source.
STOP_EVENTS = {"drop", "rename", "dropDatabase", "invalidate"}
DDL_EVENTS = {"create", "createIndexes", "dropIndexes", "modify"}
DOCUMENT_EVENTS = {"insert", "replace", "update", "delete"}
NAMESPACE_EXISTS, INDEX_NOT_FOUND, NAMESPACE_NOT_FOUND = 48, 27, 26


@retry_idempotent(operation="sync.bulk_write")
def bulk_write(collection, operations: list, *, ordered: bool):
    """A bulk write, run again on a transient failure: every write of the sync is idempotent."""
    return collection.bulk_write(operations, ordered=ordered)


class Pacer:
    """At most ``per_second`` operations a second on the target (0: no limit); thread-safe."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.operations = 0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def take(self, operations: int = 1) -> None:
        with self._lock:
            self.operations += operations
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + operations * self.interval
            wait = start - now
        if wait > 0:
            time.sleep(wait)


def id_key(document) -> bytes:
    """The exact BSON bytes of ``{_id: ...}`` of a raw document or document key."""
    return bson.encode({"_id": document["_id"]})


def id_value(key: bytes):
    """The ``_id`` back from its key (sub-documents stay raw, so they re-encode to the same bytes)."""
    return bson.decode(bytes(key), RAW)["_id"]


def transaction_of(event) -> tuple | None:
    """(session id, transaction number) of an event written in a multi-document transaction."""
    number = event.get("txnNumber")
    if number is None:
        return None
    return (bytes(event["lsid"]["id"]), int(number))


def command_count(kinds: list[str]) -> int:
    """Commands an ordered bulk write sends: one per run of writes of the same command."""
    runs = 0
    previous = None
    for kind in kinds:
        command = kind if kind in ("delete", "insert") else "update"
        runs += command != previous
        previous = command
    return runs


class RefreshSet:
    """Documents to re-read from the source and write again: ``{collection: {id key: _id}}``."""

    def __init__(self, saved: list | None = None) -> None:
        self.ids: dict[str, dict[bytes, object]] = {}
        for entry in saved or []:
            for key in entry["ids"]:
                self.add(entry["collection"], bytes(key))

    def add(self, collection: str, key: bytes) -> None:
        self.ids.setdefault(collection, {})[key] = id_value(key)

    def __len__(self) -> int:
        return sum(len(ids) for ids in self.ids.values())

    def to_state(self) -> list:
        return [
            {"collection": name, "ids": [Binary(key) for key in ids]} for name, ids in self.ids.items() if ids
        ]


@dataclass
class BatchResult:
    events: int = 0
    by_kind: Counter = field(default_factory=Counter)
    changed: dict[str, set[bytes]] = field(default_factory=dict)  # ids written, for the verification
    structure_changed: set[str] = field(default_factory=set)  # collections whose indexes/options changed
    without_post_image: int = 0  # updates applied from their updateDescription
    deltas_skipped: int = 0
    problems: list[str] = field(default_factory=list)


class Applier:
    """Applies batches of change events to ``target_db``; see the module docstring."""

    def __init__(self, target_db, source_db, *, pacer: Pacer, refresh: RefreshSet) -> None:
        self.target_db = target_db
        self.source_db = source_db.with_options(codec_options=RAW)
        self.pacer = pacer
        self.refresh = refresh
        self.refreshed = 0  # documents written again after a unique-index collision

    def apply(self, events: list) -> BatchResult:
        """Write ``events`` (document and DDL events, no stop event) in order."""
        result = BatchResult(events=len(events))
        pending: dict[str, list] = {}  # collection -> [(kind, operation, id key)], in source order
        for event in events:
            kind = event["operationType"]
            result.by_kind[kind] += 1
            if kind in DOCUMENT_EVENTS:
                name = event["ns"]["coll"]
                key = id_key(event["documentKey"])
                result.changed.setdefault(name, set()).add(key)
                writes = _document_writes(event)
                result.without_post_image += any(write_kind == "delta" for write_kind, _ in writes)
                pending.setdefault(name, []).extend((write_kind, op, key) for write_kind, op in writes)
            elif kind in DDL_EVENTS:
                # A change of a collection or its indexes comes between the writes around it.
                self._flush(pending, result)
                self._apply_ddl(event, result)
        self._flush(pending, result)
        return result

    def _flush(self, pending: dict[str, list], result: BatchResult) -> None:
        for name, writes in pending.items():
            self.write(name, coalesce(writes), result)
        pending.clear()

    def write(self, name: str, writes: list, result: BatchResult) -> None:
        """An ordered bulk write; a unique-index collision sends the document to the refresh set."""
        collection = self.target_db.get_collection(name, codec_options=RAW)
        start = 0
        while start < len(writes):
            chunk = writes[start:]
            self.pacer.take(command_count([kind for kind, _, _ in chunk]))
            try:
                bulk_write(collection, [operation for _, operation, _ in chunk], ordered=True)
                return
            except BulkWriteError as exc:
                if exc.details.get("writeConcernErrors") or not exc.details.get("writeErrors"):
                    raise
                error = exc.details["writeErrors"][0]
                failed = start + error["index"]
                kind, _, key = writes[failed]
                if error.get("code") == DUPLICATE_KEY:
                    self.refresh.add(name, key)
                elif kind == "delta":
                    # The document is gone from the source (no post-image): its delete follows.
                    result.deltas_skipped += 1
                else:
                    raise OperationFailure(
                        f"{name}: writing _id {id_value(key)!r} failed: {error.get('errmsg')}",
                        error.get("code"),
                    ) from None
                start = failed + 1

    def refresh_documents(self) -> int:
        """Write the refresh set's documents as the source has them now; returns how many remain.

        Each is deleted, then inserted again: two documents that swapped values of a unique
        index collide whichever is written first, and the deletes free both values.
        """
        for name, ids in list(self.refresh.ids.items()):
            if not ids:
                continue
            found = {
                id_key(doc): doc for doc in self.source_db[name].find({"_id": {"$in": list(ids.values())}})
            }
            writes = [("delete", DeleteOne({"_id": value}), key) for key, value in ids.items()]
            writes += [("insert", InsertOne(found[key]), key) for key in ids if key in found]
            self.refresh.ids[name] = {}
            self.write(name, writes, BatchResult())
            self.refreshed += len(found) - len(self.refresh.ids.get(name, {}))
        return len(self.refresh)

    def _apply_ddl(self, event, result: BatchResult) -> None:
        kind, name = event["operationType"], event["ns"]["coll"]
        description = dict(event.get("operationDescription") or {})
        result.structure_changed.add(name)
        commands = []
        if kind == "create":
            if event.get("nsType", "collection") not in ("collection", "view"):
                return  # time series are not copied
            description.pop("idIndex", None)
            if "viewPipeline" in description:  # SecantusDB's name for a view's pipeline
                description["pipeline"] = description.pop("viewPipeline")
            commands.append(({"create": name, **description}, {NAMESPACE_EXISTS}))
        elif kind == "createIndexes":
            indexes = [index_spec(dict(index)) for index in description.get("indexes", [])]
            commands.append(({"createIndexes": name, "indexes": indexes}, set()))
        elif kind == "dropIndexes":
            commands += [
                ({"dropIndexes": name, "index": index["name"]}, {INDEX_NOT_FOUND, NAMESPACE_NOT_FOUND})
                for index in description.get("indexes", [])
            ]
        elif kind == "modify":
            commands.append(({"collMod": name, **description}, set()))
        for command, tolerated in commands:
            self.pacer.take()
            try:
                self.target_db.command(command)
            except OperationFailure as exc:
                if exc.code in tolerated:
                    continue
                # Shown with the figures and found again by the verification; the data goes on.
                result.problems.append(
                    f"{name}: {kind} could not be applied on the target ({exc.code}: {exc})"
                )


def coalesce(writes: list[tuple]) -> list[tuple]:
    """One collection's writes of a batch, reduced to what gives the same end state, in two commands.

    Only the last whole-document write of an ``_id`` matters (and the updates from an
    ``updateDescription`` after it, kept in order). The deletes go first, so the values of
    unique indexes they free are free for the documents written after them; then the
    documents, in the order of their last change. A batch of a thousand events costs the
    rate limit two operations, not one per change of command.
    """
    final: dict[bytes, list] = {}
    last_change: dict[bytes, int] = {}
    for index, (kind, operation, key) in enumerate(writes):
        if kind == "delta":
            final.setdefault(key, []).append((kind, operation, key))
        else:
            final[key] = [(kind, operation, key)]
        last_change[key] = index
    keys = sorted(final, key=last_change.__getitem__)
    deletes = [write for key in keys for write in final[key] if write[0] == "delete"]
    return deletes + [write for key in keys for write in final[key] if write[0] != "delete"]


def _document_writes(event) -> list[tuple[str, object]]:
    """The writes that reproduce one document event: [(kind, operation)]."""
    kind, key = event["operationType"], event["documentKey"]
    if kind == "delete":
        return [("delete", DeleteOne(key))]
    full = event.get("fullDocument")
    if full is not None:
        return [("replace", ReplaceOne(key, full, upsert=True))]
    if kind != "update":
        return []
    description = event.get("updateDescription") or {}
    writes = []
    truncated = list(description.get("truncatedArrays") or [])
    if truncated:
        pushes = {item["field"]: {"$each": [], "$slice": item["newSize"]} for item in truncated}
        writes.append(("delta", UpdateOne(key, {"$push": pushes})))
    update = {}
    updated = description.get("updatedFields")
    if updated is not None and len(updated):
        update["$set"] = updated
    removed = list(description.get("removedFields") or [])
    if removed:
        update["$unset"] = dict.fromkeys(removed, "")
    if update:
        writes.append(("delta", UpdateOne(key, update)))
    return writes
