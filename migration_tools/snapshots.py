"""Rollback snapshots: the target as it was before an import first wrote to it.

Before its first write into a target, an import exports the target's data collections (never the
tools' own) to a snapshot folder, or, for a target that holds no data, writes a marker alone
(``target_was_empty``). Each records what it was taken for (``rollback_for``: the dump and the
target), so a rerun of the same import finds it.

A snapshot stands only while the target holds nothing that neither the dump nor the snapshot holds:
then restoring the snapshot (or, after a marker, dropping what the import created) loses nothing
but the import itself. Once the target holds anything else, users' writes after a cut-over for
instance, the earlier snapshot would lose them; the import then takes a fresh one and says why.
The check, cheapest first: a collection the dump and the snapshot both lack, with documents; more
documents in a collection than the two hold together; then one pass over the target in ``_id``
order, merged with the dump's and the snapshot's files: every document must be byte for byte one
of theirs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from migration_tools.bsonfiles import document_id, id_order_key, split_documents
from migration_tools.dump import (
    MANIFEST_NAME,
    SORTED_BY_ID,
    STAGING_SUFFIX,
    Dump,
    DumpContents,
    dump_database,
    holds_data,
    load_dump,
    refuse_used_folder,
    staged_folder,
    write_private,
)
from studymaster.mongo import redact
from studymaster.tools_collections import is_data_collection


class SnapshotRefused(Exception):
    """The snapshot asked for cannot be taken or kept as asked; the message says why (exit code 1)."""


@dataclass
class Snapshot:
    """The rollback point an import settled on, and what the report says of it."""

    path: Path
    reused: bool = False  # an earlier run's, still standing
    target_was_empty: bool = False
    superseded: str = ""  # an earlier run's that no longer stands: where, and why


@dataclass
class _Earlier:
    path: Path
    manifest: dict

    @property
    def target_was_empty(self) -> bool:
        return bool(self.manifest.get("target_was_empty"))

    @property
    def kind(self) -> str:
        return "empty-target marker" if self.target_was_empty else "snapshot"


def default_snapshot_dir(dump: Dump, target_db: str) -> Path:
    """A new time-stamped folder beside the dump (``-2``, ``-3``... within the same second)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = dump.root.parent / f"{dump.root.name}-rollback-{target_db}-{stamp}"
    folder, n = base, 1
    while folder.exists() or folder.with_name(folder.name + STAGING_SUFFIX).exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def purpose_of(dump: Dump, *, target_uri: str, target_db: str) -> dict:
    """What a snapshot is taken for: this dump into this target database."""
    return {
        "dump": str(dump.root.resolve()),
        "dump_created_at": (dump.manifest or {}).get("created_at", ""),
        "target": redact(target_uri),
        "database": target_db,
    }


def _earlier_snapshots(dump: Dump, target_db: str, explicit: Path | None, purpose: dict) -> list[_Earlier]:
    """This import's earlier snapshots and markers, newest first."""
    candidates = sorted(dump.root.parent.glob(f"{dump.root.name}-rollback-{target_db}-*"))
    if explicit is not None:
        candidates.append(explicit)
    found, seen = [], set()
    for candidate in candidates:
        if candidate.name.endswith(STAGING_SUFFIX) or candidate.resolve() in seen:
            continue
        seen.add(candidate.resolve())
        try:
            manifest = json.loads((candidate / MANIFEST_NAME).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict) and manifest.get("rollback_for") == purpose:
            found.append(_Earlier(candidate, manifest))
    return sorted(found, key=lambda earlier: earlier.manifest.get("created_at", ""), reverse=True)


def settle_snapshot(
    client, dump: Dump, *, target_db: str, target_uri: str, snapshot_dir: Path | None, progress
) -> Snapshot:
    """Find this import's standing snapshot, or take one, before the first write into ``target_db``.

    ``snapshot_dir`` is the folder the operator named (None: a time-stamped one beside the dump).
    Raises SnapshotRefused when an earlier snapshot stands elsewhere than the folder named (a
    fresh one now would capture the half-imported target) or the folder named is not empty, and
    DiskFullError when the disk fills up while the snapshot is written.
    """
    db = client[target_db]
    purpose = purpose_of(dump, target_uri=target_uri, target_db=target_db)
    explicit = Path(snapshot_dir) if snapshot_dir is not None else None
    superseded = ""
    for earlier in _earlier_snapshots(dump, target_db, explicit, purpose):
        reason = stale_reason(db, dump, None if earlier.target_was_empty else load_dump(earlier.path))
        if reason is None:
            if explicit is not None and explicit.resolve() != earlier.path.resolve():
                raise SnapshotRefused(
                    f"--snapshot-dir {explicit}: an earlier run of this import took its rollback "
                    f"{earlier.kind} in {earlier.path}, and it still stands; a new snapshot now would "
                    f"capture the half-imported target. Pass --snapshot-dir {earlier.path}, or leave "
                    "--snapshot-dir out."
                )
            return Snapshot(earlier.path, reused=True, target_was_empty=earlier.target_was_empty)
        superseded = (
            superseded or f"the earlier run's {earlier.kind} in {earlier.path} no longer stands ({reason})"
        )
    folder = explicit or default_snapshot_dir(dump, target_db)
    try:
        refuse_used_folder(folder)
    except FileExistsError as exc:
        why = f"; {superseded}, and a fresh snapshot needs another folder" if superseded else ""
        raise SnapshotRefused(f"the rollback snapshot cannot go there: {exc}{why}") from None
    if not superseded and not holds_data(db):
        with staged_folder(folder) as staging:
            marker = {
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "rollback_for": purpose,
                "target_was_empty": True,
                "collections": {},
            }
            write_private(staging / MANIFEST_NAME, json.dumps(marker, indent=2) + "\n")
        return Snapshot(folder, target_was_empty=True)
    dump_database(
        client, target_db, folder, source_uri=target_uri, progress=progress, notes={"rollback_for": purpose}
    )
    return Snapshot(folder, superseded=superseded)


def stale_reason(db, dump: Dump, snapshot: Dump | None) -> str | None:
    """Why the target ``db`` holds something that neither ``dump`` nor ``snapshot`` holds; None if nothing."""
    sources = [DumpContents(dump), *([DumpContents(snapshot)] if snapshot is not None else [])]
    names = [name for name in db.list_collection_names() if is_data_collection(name)]
    for name in sorted(names):
        held = sum(source.count(name) for source in sources)
        if not any(source.has(name) for source in sources):
            if db[name].find_one({}, {"_id": 1}) is not None:
                return f"{name} holds documents, and the dump has no such collection"
            continue
        present = db[name].count_documents({})
        if present > held:
            holders = "the dump and the snapshot hold" if snapshot else "the dump holds"
            return f"{name} holds {present} documents, more than the {held} {holders}"
    for name in sorted(names):
        if any(source.has(name) for source in sources):
            foreign = _first_foreign(
                _target_documents(db, name), [source.documents(name) for source in sources]
            )
            if foreign is not None:
                return (
                    f"{name} holds document {document_id(foreign)!r}, which the dump does not hold as it is"
                )
    return None


def _target_documents(db, name: str) -> Iterator[bytes]:
    for batch in db[name].find_raw_batches({}, **SORTED_BY_ID):
        yield from split_documents(batch)


def _first_foreign(target: Iterator[bytes], known: list[Iterator[bytes]]) -> bytes | None:
    """The first target document (in ``_id`` order) that is none of the ``known`` streams' byte for byte.

    Every stream is sorted by ``_id``; each is read once, in step with the target.
    """
    streams = [((id_order_key(raw), raw) for raw in stream) for stream in known]
    heads = [next(stream, None) for stream in streams]
    for raw in target:
        key = id_order_key(raw)
        match = False
        for position, stream in enumerate(streams):
            while heads[position] is not None and heads[position][0] < key:
                heads[position] = next(stream, None)
            head = heads[position]
            match = match or (head is not None and head[0] == key and bytes(head[1]) == bytes(raw))
        if not match:
            return raw
    return None
