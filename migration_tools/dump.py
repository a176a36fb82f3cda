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

import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import bson
from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS, JSONOptions
from django.conf import settings
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from gamification.invariants import UserTally
from gamification.models import Achievement, UserBadge
from migration_tools.bsonfiles import (
    DECODE,
    ContentHash,
    DamagedDumpError,
    id_order_key,
    iter_raw_documents,
    open_read,
    sha256_file,
    split_documents,
)
from migration_tools.progress import Progress, human_bytes
from migration_tools.runs import (
    Audit,
    application_audit_location,
    application_database,
    cannot_run,
    client_for,
    named_source,
    refuse,
    where,
)
from sessions_app.models import StudySession
from studymaster.commands import NO_SPACE_ERRNOS
from studymaster.mongo import redact
from studymaster.tools_collections import TOOLS_COLLECTION_PREFIX, is_data_collection, is_tools_collection

TOOL_NAME = "studymaster-migration"
TOOL_VERSION = "1.0"
MANIFEST_NAME = "manifest.json"
# A folder is written under this sibling name and renamed when complete: a folder with the final
# name is always a complete dump, and a crashed run leaves only the sibling, which a rerun replaces.
STAGING_SUFFIX = ".partial"
STAGING_MARKER = ".studymaster-partial"
# Dumps hold password hashes and e-mail addresses: only their owner may read them.
DIR_MODE, FILE_MODE = 0o700, 0o600
# Documents per cursor batch: ~0.5 MB of ours; the server caps a batch at 16 MB anyway.
CURSOR_BATCH = 2000
# Read in _id order through the _id index: without the hint the embedded server sorts in memory
# (1.1 s against 0.66 s for 45,000 study sessions); on MongoDB it is the plan chosen anyway.
SORTED_BY_ID = {"sort": [("_id", 1)], "hint": [("_id", 1)], "batch_size": CURSOR_BATCH}
READ_JSON_OPTIONS = JSONOptions(json_mode=CANONICAL_JSON_OPTIONS.json_mode, tz_aware=True)
# Besides the ledger, the collections whose documents each belong to a user: export warns of
# orphans among them, verify compares their counts per user (gamification.invariants).
PER_USER_MODELS = (UserBadge, Achievement, StudySession)


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


class DiskFullError(Exception):
    """The disk filled up while a dump or snapshot was written; nothing of it was left behind."""


def open_private(path: Path, mode: str = "wb"):
    """A new file only its owner can read (0600), whatever the umask."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(descriptor, FILE_MODE)
    return open(descriptor, mode)  # noqa: SIM115 - the caller closes it


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new owner-only file."""
    with open_private(Path(path), "w") as stream:
        stream.write(text)


class _HashingWriter:
    """A binary file that hashes and counts what is written through it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = open_private(path)
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.size += len(data)
        with self._naming_the_file():
            return self.file.write(data)

    def flush(self) -> None:
        with self._naming_the_file():
            self.file.flush()

    def close(self) -> None:
        with self._naming_the_file():
            self.file.close()

    @contextlib.contextmanager
    def _naming_the_file(self):
        """A write error names no file by itself; the messages (a full disk) must."""
        try:
            yield
        except OSError as exc:
            if exc.filename is not None:
                raise
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc


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


def list_dumpable(db, names: list[str] | None = None) -> list[dict]:
    """The listCollections entries of ``db``'s data collections (never the tools' own), by name.

    ``names`` selects some of them; ValueError names any that is not there, or is the tools' own.
    """
    infos = [
        info
        for info in db.list_collections()
        if info.get("type", "collection") == "collection" and is_data_collection(info["name"])
    ]
    if names:
        own = [name for name in names if is_tools_collection(name)]
        if own:
            raise ValueError(
                f"{', '.join(own)}: the migration tools' own collections ({TOOLS_COLLECTION_PREFIX}*) "
                "are never exported."
            )
        known = {info["name"] for info in infos}
        missing = [name for name in names if name not in known]
        if missing:
            raise ValueError(f"No collection named {', '.join(missing)} in database {db.name}.")
        infos = [info for info in infos if info["name"] in names]
    return sorted(infos, key=lambda info: info["name"])


def tools_collections_in(db) -> list[str]:
    """The migration tools' own collections present in ``db``: what export and verify leave out."""
    return sorted(name for name in db.list_collection_names() if is_tools_collection(name))


def holds_data(db) -> bool:
    """Whether ``db`` holds any document outside the tools' own and the system collections.

    The one emptiness check: export refuses an empty source, import marks an empty target, verify
    refuses an empty target, all by it.
    """
    return any(
        db[name].find_one({}, {"_id": 1}) is not None
        for name in db.list_collection_names()
        if is_data_collection(name)
    )


def describe_emptiness(db) -> str:
    """``does not exist`` or ``holds no documents``, for a database that holds no data."""
    return "holds no documents" if db.list_collection_names() else "does not exist"


def make_private_parents(path: Path) -> None:
    """Create the missing folders above ``path``, owner-only like the dumps they will hold."""
    missing = [parent for parent in Path(path).parents if not parent.exists()]
    for parent in reversed(missing):
        parent.mkdir(mode=DIR_MODE)
        parent.chmod(DIR_MODE)


def refuse_used_folder(final: Path) -> None:
    """FileExistsError unless ``final`` is absent or an empty folder: a dump never mixes with other files."""
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        state = "already holds a dump" if (final / MANIFEST_NAME).exists() else "is not empty"
        raise FileExistsError(f"{final} {state}; choose a new or empty folder.")


@contextlib.contextmanager
def staged_folder(final: Path):
    """Yield an empty owner-only sibling of ``final`` to write in; rename it to ``final`` at the end.

    ``final`` must be absent or an empty folder (FileExistsError otherwise). A sibling left by a
    crashed run (it carries STAGING_MARKER) is replaced; one that another run holds, or that is
    not ours, is refused. On any failure, Ctrl-C included, the sibling is removed: ``final``
    either is complete or does not exist.
    """
    final = Path(final)
    refuse_used_folder(final)
    staging = final.with_name(final.name + STAGING_SUFFIX)
    if staging.exists():
        if not (staging / STAGING_MARKER).exists():
            raise FileExistsError(f"{staging} exists and was not written by us; move it away.")
        with open(staging / STAGING_MARKER, "a") as held:
            if not _try_lock(held):
                raise FileExistsError(f"{staging}: another run is writing {final} right now.")
        shutil.rmtree(staging)  # what a crashed earlier run left
    make_private_parents(final)
    staging.mkdir(mode=DIR_MODE)
    staging.chmod(DIR_MODE)  # whatever the umask
    try:
        with open_private(staging / STAGING_MARKER, "w") as marker:
            _try_lock(marker)
            yield staging
        os.remove(staging / STAGING_MARKER)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _try_lock(stream) -> bool:
    try:
        fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _disk_full(exc: OSError, client, db_name: str, out_dir: Path, free: int, compress: bool) -> DiskFullError:
    """The message for a disk that filled up: the path, what the dump needs, what was free."""
    try:
        needed = f"about {human_bytes(client[db_name].command('dbStats')['dataSize'])}"
    except (PyMongoError, KeyError):
        needed = "an unknown amount"
    return DiskFullError(
        f"no space left on the device of {out_dir} (writing {Path(exc.filename or out_dir).name}): the "
        f"dump of database {db_name} needs {needed}{' (less with --gzip)' if not compress else ''}, and "
        f"{human_bytes(free)} were free when it started. Nothing was left in {out_dir}; free some "
        "space or choose another folder, then run the same command again."
    )


def dump_database(
    client: MongoClient,
    db_name: str,
    out_dir: Path,
    *,
    source_uri: str,
    collections: list[str] | None = None,
    compress: bool = False,
    progress: Progress | None = None,
    notes: dict | None = None,
    tally: UserTally | None = None,
) -> dict:
    """Export ``db_name``'s data collections to ``out_dir`` and return the manifest (also on disk).

    Streams one document at a time, into a sibling folder renamed to ``out_dir`` once the dump
    reads back as written; files are owner-only. Raises FileExistsError when ``out_dir`` is not
    empty, DiskFullError when the disk fills up, and DamagedDumpError when the re-read does not
    match what was written; in every case nothing is left under ``out_dir``.
    """
    out_dir = Path(out_dir)
    make_private_parents(out_dir)
    free = shutil.disk_usage(out_dir.parent).free
    try:
        with staged_folder(out_dir) as staging:
            return _dump_into(
                client, db_name, staging, source_uri=source_uri, collections=collections, compress=compress,
                progress=progress or Progress(), notes=notes, tally=tally,
            )  # fmt: skip
    except OSError as exc:
        if exc.errno in NO_SPACE_ERRNOS:
            raise _disk_full(exc, client, db_name, out_dir, free, compress) from exc
        raise


def _dump_into(client, db_name, out_dir: Path, *, source_uri, collections, compress, progress, notes, tally):
    db_dir = out_dir / db_name
    db_dir.mkdir(mode=DIR_MODE)
    db_dir.chmod(DIR_MODE)
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
        "excluded": tools_collections_in(db),
        "collections": {},
        **(notes or {}),
    }
    for info in list_dumpable(db, collections):
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
                tally.add(name, split_documents(batch))
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
    write_private(out_dir / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    # The files' SHA-256 against the bytes hashed while writing: equal means the files hold exactly
    # the documents counted and content-hashed above, so a second pass per document adds nothing.
    check_dump(_read_dump(out_dir), progress=progress, documents=False)
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
    if (path / STAGING_MARKER).exists():
        raise DamagedDumpError(f"{path}: an unfinished export (it was interrupted); run the export again.")
    return _read_dump(path)


def _read_dump(path: Path) -> Dump:
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


class DumpContents:
    """What a dump holds, per collection: whether it holds it, how many documents (from the
    manifest when there is one), and its documents in ``_id`` order."""

    def __init__(self, dump: Dump) -> None:
        self.dump = dump

    def has(self, name: str) -> bool:
        return name in self.dump.collections

    def count(self, name: str) -> int:
        if not self.has(name):
            return 0
        listed = ((self.dump.manifest or {}).get("collections") or {}).get(name)
        if listed:
            return listed["documents"]
        return sum(1 for _ in iter_raw_documents(self.dump.collections[name].bson_path))

    def documents(self, name: str) -> Iterator[bytes]:
        return sorted_documents(self.dump.collections[name].bson_path) if self.has(name) else iter(())


def sorted_documents(path: Path) -> Iterator[bytes]:
    """The raw documents of a ``.bson`` file in ``_id`` order.

    Our dumps are written sorted and are read straight through; a file in another order
    (mongodump's natural order) is sorted first, holding only each document's ``_id`` key, offset
    and length in memory and reading the documents back from a plain copy.
    """
    previous = None
    for raw in iter_raw_documents(path):
        key = id_order_key(raw)
        if previous is not None and previous > key:
            return _sorted_copy(path)
        previous = key
    return iter_raw_documents(path)


def _sorted_copy(path: Path) -> Iterator[bytes]:
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed when the generator ends
    index, offset = [], 0
    for raw in iter_raw_documents(path):
        spool.write(raw)
        index.append((id_order_key(raw), offset, len(raw)))
        offset += len(raw)
    index.sort(key=lambda entry: entry[0])

    def read() -> Iterator[bytes]:
        with spool:
            for _key, start, length in index:
                spool.seek(start)
                yield spool.read(length)

    return read()


def _decode_or_raise(raw: bytes, path: Path, offset: int) -> None:
    try:
        bson.decode(raw, DECODE)
    except Exception as exc:  # InvalidBSON and the decoder's other complaints
        raise DamagedDumpError(f"{path}: the document at byte {offset} is not valid BSON ({exc}).") from None


# -- export_local ---------------------------------------------------------------------------------
@dataclass
class Export:
    """What one export_local run did: the manifest written, its time, the domain's warnings."""

    db_name: str
    source: str  # the redacted URI
    out: str  # the folder as the operator named it
    manifest: dict
    seconds: float
    warnings: list[str]

    @property
    def documents(self) -> int:
        return sum(item["documents"] for item in self.manifest["collections"].values())

    @property
    def size(self) -> int:
        return sum(item["bytes"] for item in self.manifest["collections"].values())


def export_run(
    *,
    out: str,
    uri: str | None,
    db_name: str | None,
    collections: list[str] | None,
    compress: bool,
    progress: Progress,
    audit: Audit,
    announce: Callable[[str], object] = print,
) -> Export:
    """export_local: export the source's data collections to the folder ``out``, recorded in ``audit``.

    The source is ``uri`` or LOCAL_MONGODB_URI (never MONGODB_URI), the database ``db_name`` or
    MONGODB_DB_NAME. ``announce`` is told first what the run reads and writes. The run is recorded
    in the application's database. Raises CommandError: exit 1 for a source database that does not
    exist or holds no documents, a folder that is not empty, or an unknown collection; exit 2 when
    no source is named, it cannot be reached, the disk fills up, or the dump does not read back as
    written.
    """
    uri, uri_name = named_source(uri, option="--uri", command="export_local")
    db_name = db_name or settings.MONGODB_DB_NAME
    audit.source, audit.target, audit.database = uri, str(out), db_name
    announce(
        f"export_local: reads {where(uri, db_name, uri_name)} and writes {out}; the audit record goes to "
        f"{application_audit_location()}."
    )
    with audit.recording(application_database, location="the application's database"):
        client = client_for(uri, name=uri_name)
        try:
            if not holds_data(client[db_name]):
                raise refuse(
                    f"Database {db_name!r} on {redact(uri)} {describe_emptiness(client[db_name])}: nothing "
                    f"to export; check --db and {uri_name}."
                )
            started = time.monotonic()
            tally = UserTally(PER_USER_MODELS)
            try:
                manifest = dump_database(
                    client,
                    db_name,
                    Path(out),
                    source_uri=uri,
                    collections=collections,
                    compress=compress,
                    progress=progress,
                    tally=tally,
                )
            except (FileExistsError, ValueError) as exc:
                raise refuse(str(exc)) from None
            except DiskFullError as exc:
                raise cannot_run(f"disk full: {exc}") from None
            except DamagedDumpError as exc:
                raise cannot_run(f"The dump did not read back as written: {exc}") from None
            seconds = time.monotonic() - started
        finally:
            client.close()
        stats = manifest["collections"]
        audit.counts = {name: item["documents"] for name, item in stats.items()}
        audit.checksums = {name: item["content_hash"] for name, item in stats.items()}
    return Export(db_name, redact(uri), str(out), manifest, seconds, tally.warnings() + _place_warnings(out))


def _place_warnings(out: str) -> list[str]:
    """A dump inside the project's folder, where git does not ignore it, is one ``git add .`` away
    from being published."""
    root = Path(settings.BASE_DIR).resolve()
    if not Path(out).resolve().is_relative_to(root) or _git_ignores(root, Path(out).resolve()):
        return []
    return [
        f"{out} is inside the project's folder, where git would pick it up: a dump holds password "
        "hashes and e-mail addresses; keep dumps outside the checkout (docs/migration.md)."
    ]


def _git_ignores(root: Path, path: Path) -> bool:
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "check-ignore", "-q", str(path)], capture_output=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False  # no git to ask: warn
    return result.returncode == 0


def format_export_collections(export: Export) -> list[str]:
    """One line per exported collection: its documents and size."""
    return [
        f"  {name:<40} {item['documents']:>9} documents  {human_bytes(item['bytes'])}"
        for name, item in export.manifest["collections"].items()
    ]


def format_export_summary(export: Export) -> str:
    """What was exported, how fast, that it read back, and what was left out."""
    return (
        f"Exported {export.documents} documents ({human_bytes(export.size)}) in "
        f"{len(export.manifest['collections'])} collections of {export.db_name} from {export.source} to "
        f"{export.out} in {export.seconds:.1f}s ({export.documents / max(export.seconds, 1e-6):.0f} "
        f"documents/s). Re-read: every checksum matches {Path(export.out) / MANIFEST_NAME}. "
        f"{left_out_sentence(export.manifest['excluded'], 'exported')}"
    )


def left_out_sentence(names: list[str], verb: str) -> str:
    """What export and verify say of the tools' own collections they left out."""
    found = f": {', '.join(names)}" if names else " (none here)"
    return f"Never {verb}: the migration tools' own collections ({TOOLS_COLLECTION_PREFIX}*){found}."
