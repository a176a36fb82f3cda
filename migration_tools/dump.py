"""Streaming export in mongodump's directory layout, plus a manifest of checksums.

Layout (``mongorestore`` reads it as it is)::

    DIR/manifest.json
    DIR/<db>/<collection>.bson[.gz]            raw BSON documents back to back, sorted by _id
    DIR/<db>/<collection>.metadata.json[.gz]   canonical Extended JSON: options, indexes, uuid, ...

The manifest holds, per collection, the document count, the BSON byte size, the
SHA-256 of each file and an order-independent content hash (the sum of the
documents' SHA-256 modulo 2**256), so a dump is checked before anything is written.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import bson
from bson import ObjectId, json_util
from bson.json_util import CANONICAL_JSON_OPTIONS, JSONOptions
from pymongo import MongoClient

from migration_tools.bsonfiles import (
    DECODE,
    ContentHash,
    DamagedDumpError,
    iter_raw_documents,
    open_read,
    sha256_file,
    split_documents,
)
from migration_tools.progress import Progress
from studymaster.mongo import redact

TOOL_NAME = "studymaster-migration"
TOOL_VERSION = "1.0"
MANIFEST_NAME = "manifest.json"
AUDIT_COLLECTION = "migration_tools_migrationrun"
# Documents per cursor batch: ~0.5 MB of ours; the server caps a batch at 16 MB anyway.
CURSOR_BATCH = 2000
# Read in _id order through the _id index: without the hint the embedded server sorts in memory
# (1.1 s against 0.66 s for 45,000 study sessions); on MongoDB it is the plan chosen anyway.
SORTED_BY_ID = {"sort": [("_id", 1)], "hint": [("_id", 1)], "batch_size": CURSOR_BATCH}
READ_JSON_OPTIONS = JSONOptions(json_mode=CANONICAL_JSON_OPTIONS.json_mode, tz_aware=True)


@dataclass
class CollectionFiles:
    """One collection of a dump: its files, and what its metadata says."""

    name: str
    bson_path: Path
    metadata_path: Path | None
    metadata: dict = field(default_factory=dict)

    @property
    def options(self) -> dict:
        return dict(self.metadata.get("options") or {})

    @property
    def indexes(self) -> list[dict]:
        return list(self.metadata.get("indexes") or [])


@dataclass
class Dump:
    """A dump directory as found on disk; ``manifest`` is None for a plain mongodump."""

    root: Path
    db_dir: Path
    db_name: str
    manifest: dict | None
    collections: dict[str, CollectionFiles]


class _HashingWriter:
    """A binary file that hashes and counts what is written through it."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def _open_write(path: Path, *, compress: bool):
    writer = _HashingWriter(path)
    stream = gzip.GzipFile(filename="", mode="wb", fileobj=writer, mtime=0) if compress else writer
    return writer, stream


def collection_metadata(db, info: dict) -> dict:
    """mongodump's metadata document for one collection (listCollections entry ``info``)."""
    uuid = (info.get("info") or {}).get("uuid")
    indexes = [dict(index) for index in db[info["name"]].list_indexes()]
    for index in indexes:
        index.pop("ns", None)
    return {
        "indexes": indexes,
        "uuid": uuid.hex() if uuid is not None else "",
        "collectionName": info["name"],
        "type": info.get("type", "collection"),
        "options": dict(info.get("options") or {}),
    }


def list_dumpable(db, names: list[str] | None, exclude: set[str]) -> list[dict]:
    infos = [
        info
        for info in db.list_collections()
        if info.get("type", "collection") == "collection"
        and not info["name"].startswith("system.")
        and info["name"] not in exclude
    ]
    if names:
        known = {info["name"] for info in infos}
        missing = [name for name in names if name not in known]
        if missing:
            raise ValueError(f"No collection named {', '.join(missing)} in database {db.name}.")
        infos = [info for info in infos if info["name"] in names]
    return sorted(infos, key=lambda info: info["name"])


def dump_database(
    client: MongoClient,
    db_name: str,
    out_dir: Path,
    *,
    source_uri: str,
    collections: list[str] | None = None,
    compress: bool = False,
    exclude: set[str] | frozenset = frozenset({AUDIT_COLLECTION}),
    progress: Progress | None = None,
    notes: dict | None = None,
    tally: DomainTally | None = None,
) -> dict:
    """Export ``db_name`` to ``out_dir`` and return the manifest (also written to disk).

    Streams one document at a time. Raises FileExistsError when ``out_dir`` already
    holds a dump, and DamagedDumpError when the re-read does not match what was written.
    """
    progress = progress or Progress()
    out_dir = Path(out_dir)
    db_dir = out_dir / db_name
    if (out_dir / MANIFEST_NAME).exists() or (db_dir.exists() and any(db_dir.iterdir())):
        raise FileExistsError(f"{out_dir} already holds a dump; choose an empty folder.")
    db_dir.mkdir(parents=True, exist_ok=True)
    db = client[db_name]
    suffix = ".gz" if compress else ""
    server_version = client.server_info().get("version", "")
    manifest = {
        "tool": TOOL_NAME,
        "tool_version": TOOL_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": {"uri": redact(source_uri), "server_version": server_version, "database": db_name},
        "database": db_name,
        "gzip": compress,
        "hash": "sha256; content_hash = sum of each document's SHA-256 mod 2**256",
        "excluded": sorted(exclude),
        "collections": {},
        **(notes or {}),
    }
    for info in list_dumpable(db, collections, set(exclude)):
        name = info["name"]
        files = {}
        meta_path = db_dir / f"{name}.metadata.json{suffix}"
        writer, stream = _open_write(meta_path, compress=compress)
        stream.write(
            json_util.dumps(collection_metadata(db, info), json_options=CANONICAL_JSON_OPTIONS).encode()
        )
        stream.close()
        writer.close()
        files[meta_path.name] = {"sha256": writer.sha256.hexdigest(), "size": writer.size}

        bson_path = db_dir / f"{name}.bson{suffix}"
        writer, stream = _open_write(bson_path, compress=compress)
        content = ContentHash()
        if tally is not None:
            tally.start(name)
        # Whole server batches, as bytes: no Python object per document on the way to the file.
        # A bounded batch keeps memory flat however large the collection.
        written = 0
        for batch in db[name].find_raw_batches({}, **SORTED_BY_ID):
            stream.write(batch)
            written += len(batch)
            content.add_batch(batch)
            if tally is not None:
                tally.add_batch(name, batch)
            progress.update(name, content.count, content.bytes)
        stream.close()
        writer.close()
        if written != content.bytes:
            raise DamagedDumpError(f"{bson_path}: the server's batches did not frame as BSON documents.")
        files[bson_path.name] = {"sha256": writer.sha256.hexdigest(), "size": writer.size}
        manifest["collections"][name] = {
            "documents": content.count,
            "bytes": content.bytes,
            "content_hash": content.hexdigest(),
            "files": files,
        }
    progress.done()
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    # The files' SHA-256 against the bytes hashed while writing: equal means the files hold exactly
    # the documents counted and content-hashed above, so a second pass per document adds nothing.
    check_dump(load_dump(out_dir), progress=progress, documents=False)
    return manifest


# -- reading a dump back -------------------------------------------------------------------------
def _db_folder(root: Path) -> tuple[Path, Path]:
    """(root, db folder) for a dump root or a database folder."""
    if any(child.name.endswith((".bson", ".bson.gz")) for child in root.iterdir()):
        return root.parent, root
    folders = [child for child in root.iterdir() if child.is_dir()]
    if len(folders) != 1:
        shown = ", ".join(sorted(f.name for f in folders)) or "none"
        raise DamagedDumpError(
            f"{root}: expected one database folder, found {len(folders)} ({shown}). "
            "Pass the database folder itself with --from."
        )
    return root, folders[0]


def load_dump(path: Path) -> Dump:
    """Find the collections of a dump (ours or mongodump's) and read their metadata.

    Raises DamagedDumpError naming the file when a manifest or metadata file is unreadable.
    """
    path = Path(path)
    if not path.is_dir():
        raise DamagedDumpError(f"{path}: no such folder.")
    root, db_dir = _db_folder(path)
    manifest = None
    manifest_path = root / MANIFEST_NAME
    if manifest_path.exists() and root != db_dir:
        try:
            manifest = json.loads(manifest_path.read_text())
            manifest["collections"]  # noqa: B018 - a manifest without it is damaged
        except (ValueError, KeyError, TypeError) as exc:
            raise DamagedDumpError(f"{manifest_path}: not a valid manifest ({exc}).") from None
    collections: dict[str, CollectionFiles] = {}
    for bson_path in sorted(db_dir.iterdir()):
        for suffix in (".bson", ".bson.gz"):
            if bson_path.name.endswith(suffix) and not bson_path.name.endswith(".metadata.json" + suffix):
                name = bson_path.name[: -len(suffix)]
                meta_path = db_dir / f"{name}.metadata.json{suffix[5:]}"
                collections[name] = CollectionFiles(
                    name, bson_path, meta_path if meta_path.exists() else None, read_metadata(meta_path)
                )
    if manifest is not None:
        missing = sorted(set(manifest["collections"]) - set(collections))
        if missing:
            raise DamagedDumpError(
                f"{db_dir}: the manifest lists {', '.join(missing)}, whose files are missing."
            )
    db_name = (manifest or {}).get("database") or db_dir.name
    return Dump(root=root, db_dir=db_dir, db_name=db_name, manifest=manifest, collections=collections)


def read_metadata(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        with open_read(path) as stream:
            metadata = json_util.loads(stream.read().decode(), json_options=READ_JSON_OPTIONS)
    except (OSError, EOFError, ValueError, TypeError) as exc:
        raise DamagedDumpError(f"{path}: not valid Extended JSON metadata ({exc}).") from None
    if not isinstance(metadata, dict):
        raise DamagedDumpError(f"{path}: the metadata is not a JSON object.")
    return metadata


def check_dump(dump: Dump, *, progress: Progress | None = None, documents: bool = True) -> dict:
    """Check every file of ``dump``: checksums (when there is a manifest) and BSON framing.

    Returns per-collection counts. Raises DamagedDumpError naming the first bad file.
    Without a manifest each document is also fully decoded, since no checksum vouches for it.
    ``documents=False`` (for a dump this process has just written) checks the files' sizes
    and SHA-256 only, and takes the counts from the manifest.
    """
    progress = progress or Progress()
    report = {}
    for name, files in dump.collections.items():
        expected = (dump.manifest or {}).get("collections", {}).get(name)
        if dump.manifest is not None and expected is None:
            raise DamagedDumpError(f"{files.bson_path}: not listed in the manifest.")
        if expected:
            for file_name, facts in expected["files"].items():
                path = dump.db_dir / file_name
                if not path.exists():
                    raise DamagedDumpError(f"{path}: listed in the manifest but missing.")
                size = path.stat().st_size
                if size != facts["size"]:
                    state = "truncated" if size < facts["size"] else "longer than written"
                    raise DamagedDumpError(
                        f"{path}: {state}: {size} bytes where the manifest says {facts['size']} "
                        "(so its SHA-256 cannot match)."
                    )
                if sha256_file(path) != facts["sha256"]:
                    raise DamagedDumpError(f"{path}: its SHA-256 does not match the manifest.")
            if not documents:
                report[name] = {key: expected[key] for key in ("documents", "bytes", "content_hash")}
                continue
        content = ContentHash()
        for raw in iter_raw_documents(files.bson_path):
            if not expected:
                _decode_or_raise(raw, files.bson_path, content.bytes)
            content.add(raw)
            progress.update(
                f"checking {name}", content.count, content.bytes, expected["documents"] if expected else None
            )
        if expected and (content.count, content.hexdigest()) != (
            expected["documents"],
            expected["content_hash"],
        ):
            raise DamagedDumpError(
                f"{files.bson_path}: holds {content.count} documents whose content hash does not match "
                f"the manifest ({expected['documents']} documents)."
            )
        report[name] = {
            "documents": content.count,
            "bytes": content.bytes,
            "content_hash": content.hexdigest(),
        }
    progress.done()
    return report


def _decode_or_raise(raw: bytes, path: Path, offset: int) -> None:
    try:
        bson.decode(raw, DECODE)
    except Exception as exc:  # InvalidBSON and the decoder's other complaints
        raise DamagedDumpError(f"{path}: the document at byte {offset} is not valid BSON ({exc}).") from None


# -- domain warnings ---------------------------------------------------------------------------
USERS = "accounts_user"
LEDGER = "gamification_pointsentry"
PER_USER_COLLECTIONS = ("gamification_userbadge", "gamification_achievement", "sessions_app_studysession")


class DomainTally:
    """Problems in the application's data that a migration carries over as they are.

    Gathered from the documents as they are exported, so finding them costs no second scan
    of the database: orphans (rows whose user is gone) and points that differ from the ledger.
    """

    def __init__(self) -> None:
        self.users_exported = False
        self.points: dict = {}
        self.per_user: dict[str, Counter] = {}
        self.ledger: Counter = Counter()

    def start(self, name: str) -> None:
        """A collection's export begins (it may hold no documents)."""
        if name == USERS:
            self.users_exported = True
        elif name in (LEDGER, *PER_USER_COLLECTIONS):
            self.per_user[name] = Counter()

    def add_batch(self, name: str, batch: bytes) -> None:
        if name == USERS:
            for raw in split_documents(batch):
                user = bson.decode(bytes(raw), DECODE)
                self.points[_user_key(user["_id"])] = user.get("points", 0) or 0
        elif name in (LEDGER, *PER_USER_COLLECTIONS):
            counts = self.per_user[name]
            if name != LEDGER:
                for raw in split_documents(batch):
                    counts[_user_and_amount(raw, ledger=False)[0]] += 1
                return
            for raw in split_documents(batch):
                user, amount = _user_and_amount(raw, ledger=True)
                counts[user] += 1
                self.ledger[user] += amount

    def warnings(self) -> list[str]:
        """Orphans per collection, and users whose points differ from the ledger's sum."""
        if not self.users_exported:
            return []
        warnings = []
        for name, counts in self.per_user.items():
            orphans = sum(n for user, n in counts.items() if user not in self.points)
            if orphans:
                warnings.append(f"{name}: {orphans} document(s) whose user does not exist (orphans).")
        if LEDGER in self.per_user:
            mismatched = [user for user, total in self.points.items() if self.ledger.get(user, 0) != total]
            if mismatched:
                shown = ", ".join(str(_user_value(user)) for user in mismatched[:3])
                warnings.append(
                    f"{USERS}: {len(mismatched)} user(s) whose points differ from the sum of their "
                    f"{LEDGER} amounts (first: {shown})."
                )
        return warnings


# The layout the application writes: an ObjectId _id, then user_id, then (the ledger) amount.
_USER_ID_AT_21 = b"\x07user_id\x00"
_INT32_AMOUNT, _INT64_AMOUNT = b"\x10amount\x00", b"\x12amount\x00"


def _user_and_amount(raw, *, ledger: bool) -> tuple:
    """(user key, amount) of a raw document: read at fixed offsets when the document has the
    application's layout (each field's type and name checked), else decoded."""
    if raw[4:9] == b"\x07_id\x00" and raw[21:30] == _USER_ID_AT_21:
        user = bytes(raw[30:42])
        if not ledger:
            return user, 0
        marker = raw[42:50]
        if marker == _INT32_AMOUNT:
            return user, int.from_bytes(raw[50:54], "little", signed=True)
        if marker == _INT64_AMOUNT:
            return user, int.from_bytes(raw[50:58], "little", signed=True)
    document = bson.decode(bytes(raw), DECODE)
    return _user_key(document.get("user_id")), document.get("amount", 0) or 0


def _user_key(value):
    return value.binary if isinstance(value, ObjectId) else value


def _user_value(key):
    return ObjectId(key) if isinstance(key, bytes) and len(key) == 12 else key
