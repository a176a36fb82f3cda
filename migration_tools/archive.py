"""mongodump's archive format, both ways: a whole database in one file, or in a pipe.

The format (mongo-tools ``common/archive/spec.md``, format version 0.1), every integer
little-endian::

    magic number   6d e2 99 81 (0x8199e26d)
    header         {concurrent_collections: int32, version: "0.1", server_version, tool_version}
    prelude        per namespace {db, collection, metadata, size: int32, type}, where metadata is
                   the collection's metadata.json as text (canonical Extended JSON); then ff ff ff ff
    blocks         {db, collection, EOF: false, CRC: int64 0}, BSON documents, ff ff ff ff;
                   the blocks of several namespaces may interleave, and each namespace ends with
                   one block {db, collection, EOF: true, CRC}, ff ff ff ff, that holds no document.

``CRC`` is Go's ``hash/crc64`` with its ECMA table (CRC-64/XZ: the reflected polynomial
0xC96C5795D7870F42, initial value and final XOR all ones) over the namespace's documents in
archive order, as a signed int64; 0 for a namespace without documents. ``mongodump --archive
--gzip`` gzips the whole stream. ``--oplog`` adds a namespace ``oplog`` in the database "".
A view is a namespace with metadata and no documents; a time series ``X`` has its documents
under ``system.buckets.X``, a namespace the prelude does not list.

The CRC covers the documents only: the header and the prelude's metadata (options, indexes)
carry no checksum, so for a mongodump archive they are checked for form only. Our writer adds a
sibling ``PATH.manifest.json`` (not for a pipe) with the SHA-256 of the whole file and, per
collection, the counts and content hashes of a folder dump's manifest: with it every byte is
vouched for.

Reading checks the whole archive once, before a caller writes anything: framing, every CRC-64,
the manifest when there is one. A pipe (or a gzipped archive, which cannot be sought in) is
spooled to an unnamed temporary file during that pass. Afterwards each collection's documents
are read back by their offsets, so no collection is ever held in memory.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import anycrc
import bson
from bson import Int64, json_util
from bson.json_util import CANONICAL_JSON_OPTIONS
from pymongo import MongoClient

from gamification.invariants import UserTally
from migration_tools.bsonfiles import (
    DECODE,
    MAX_DOCUMENT_BYTES,
    READ_BYTES,
    ContentHash,
    DamagedDumpError,
    frame_documents,
    sha256_file,
)
from migration_tools.dump import (
    READ_JSON_OPTIONS,
    STAGING_SUFFIX,
    TOOL_NAME,
    TOOL_VERSION,
    Dump,
    HashingWriter,
    MetadataFields,
    collection_metadata,
    collection_streams,
    disk_full_error,
    gzip_writer,
    list_dumpable,
    load_dump,
    make_private_parents,
    new_manifest,
    open_private,
    select_collections,
    write_private,
)
from migration_tools.options import reordering_warning
from migration_tools.progress import Progress
from migration_tools.runs import cannot_run, refuse
from studymaster.commands import NO_SPACE_ERRNOS

MAGIC = struct.pack("<I", 0x8199E26D)
TERMINATOR = b"\xff\xff\xff\xff"
FORMAT_VERSION = "0.1"
GZIP_MAGIC = b"\x1f\x8b"
MANIFEST_SUFFIX = ".manifest.json"
OPLOG = ("", "oplog")
_INT32 = struct.Struct("<i")
_CRC64 = anycrc.Model("CRC64-XZ")  # = Go's crc64.MakeTable(crc64.ECMA), as mongodump uses


class DamagedArchiveError(DamagedDumpError):
    """An archive is not one, is truncated or mis-framed, or fails its CRC-64 or manifest."""


class ArchiveSpoolError(OSError):
    """The temporary copy of a piped or gzipped archive could not be written (disk full, say)."""


def crc64(data, crc: int | None = None) -> int:
    """CRC-64 as mongodump computes it (Go's ECMA table), continuing from ``crc`` when given."""
    return _CRC64.calc(data, crc)


def signed64(value: int) -> int:
    """An unsigned 64-bit CRC as the archive stores it: Go's int64(uint64)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def manifest_path_for(path: Path) -> Path:
    """The sibling manifest of an archive file: ``PATH.manifest.json``."""
    return path.with_name(path.name + MANIFEST_SUFFIX)


# -- writing -----------------------------------------------------------------------------------
class ArchiveWriter:
    """Writes mongodump's archive format to a binary stream.

    ``begin()`` once with every namespace; then ``write()`` batches of whole BSON documents of
    any namespace in any order (a change of namespace starts a new block, so namespaces may
    interleave), and ``end()`` each namespace once; ``finish()`` checks that all were ended.

    At most ``concurrent_collections`` namespaces may be open (begun and not ended) at a time:
    mongorestore restores that many at once (or its --numParallelCollections, if more), each until
    its end-of-collection header, and it stalls on an archive that interleaves more.
    """

    def __init__(
        self,
        stream,
        *,
        server_version: str,
        tool_version: str = f"{TOOL_NAME} {TOOL_VERSION}",
        concurrent_collections: int = 1,
    ) -> None:
        self.stream = stream
        self.header = {
            "concurrent_collections": concurrent_collections,
            "version": FORMAT_VERSION,
            "server_version": server_version,
            "tool_version": tool_version,
        }
        self._crc: dict[tuple[str, str], int | None] = {}
        self._ended: set[tuple[str, str]] = set()
        self._open: set[tuple[str, str]] = set()
        self._current: tuple[str, str] | None = None
        self._begun = False

    def begin(self, namespaces: list[tuple[str, str, dict | None, str]]) -> None:
        """The magic number, the header and the prelude: (db, collection, metadata, type) each."""
        self.stream.write(MAGIC + bson.encode(self.header))
        for db, collection, metadata, kind in namespaces:
            text = json_util.dumps(metadata, json_options=CANONICAL_JSON_OPTIONS) if metadata else ""
            entry = {"db": db, "collection": collection, "metadata": text, "size": 0, "type": kind}
            self.stream.write(bson.encode(entry))
            self._crc[(db, collection)] = None
        self.stream.write(TERMINATOR)
        self._begun = True

    def _known(self, namespace: tuple[str, str]) -> None:
        if not self._begun or namespace not in self._crc:
            raise ValueError(f"{'.'.join(namespace)} is not in the archive's prelude.")
        if namespace in self._ended:
            raise ValueError(f"{'.'.join(namespace)} has already ended.")

    def _open_block(self, namespace: tuple[str, str]) -> None:
        if namespace not in self._open:
            if len(self._open) >= self.header["concurrent_collections"]:
                raise ValueError(
                    f"{'.'.join(namespace)} would be namespace number {len(self._open) + 1} open at once; the "
                    f"header allows {self.header['concurrent_collections']} (concurrent_collections)."
                )
            self._open.add(namespace)
        if self._current is not None:
            self.stream.write(TERMINATOR)
        db, collection = namespace
        self.stream.write(bson.encode({"db": db, "collection": collection, "EOF": False, "CRC": Int64(0)}))
        self._current = namespace

    def write(self, db: str, collection: str, batch) -> None:
        """Add whole BSON documents, back to back (a server batch), to the namespace."""
        namespace = (db, collection)
        self._known(namespace)
        if not batch:
            return
        if self._current != namespace:
            self._open_block(namespace)
        self.stream.write(batch)
        self._crc[namespace] = crc64(batch, self._crc[namespace])

    def end(self, db: str, collection: str) -> int:
        """Close the namespace with its end-of-collection header; returns its CRC as stored."""
        namespace = (db, collection)
        self._known(namespace)
        if self._crc[namespace] is None and self._current != namespace:
            self._open_block(namespace)  # mongodump writes an empty block for a namespace without documents
        if self._current is not None:
            self.stream.write(TERMINATOR)
            self._current = None
        crc = signed64(self._crc[namespace] or 0)
        eof = {"db": db, "collection": collection, "EOF": True, "CRC": Int64(crc)}
        self.stream.write(bson.encode(eof) + TERMINATOR)
        self._ended.add(namespace)
        self._open.discard(namespace)
        return crc

    def finish(self) -> None:
        """Raise ValueError when a namespace of the prelude was never ended."""
        open_ = sorted(".".join(ns) for ns in set(self._crc) - self._ended)
        if open_:
            raise ValueError(f"The archive's namespaces {', '.join(open_)} were not ended.")


def dump_database_archive(
    client: MongoClient,
    db_name: str,
    out: Path | BinaryIO,
    *,
    source_uri: str,
    collections: list[str] | None = None,
    compress: bool = False,
    progress: Progress | None = None,
    notes: dict | None = None,
    tally: UserTally | None = None,
) -> dict:
    """Export ``db_name`` as one mongodump archive to the file ``out`` or the binary stream ``out``.

    Returns the manifest; for a file it is also written to ``PATH.manifest.json``, and the file is
    written as ``PATH.partial`` and renamed when complete, so a failed export leaves no archive
    behind. Streams whole server batches (bounded memory). ``tally`` (a UserTally) sees every
    batch, as for a folder dump. Raises FileExistsError when
    ``out`` or its manifest exists, ValueError for an unknown collection, and DamagedDumpError
    when the file does not read back as written.
    """
    progress = progress or Progress()
    db = client[db_name]
    infos = list_dumpable(db, collections, views=True)
    manifest = new_manifest(client, db_name, source_uri=source_uri, compress=compress, notes=notes)
    to_file = isinstance(out, str | Path)
    if to_file:
        out = Path(out)
        for path in (out, manifest_path_for(out)):
            if path.exists():
                raise FileExistsError(f"{path} already exists; choose a new file name.")
        make_private_parents(out)
        free = shutil.disk_usage(out.parent).free
        partial = out.with_name(out.name + STAGING_SUFFIX)
        sink = HashingWriter(open_private(partial), partial)
    else:
        sink = HashingWriter(out)
    try:
        stream = gzip_writer(sink) if compress else sink
        writer = ArchiveWriter(stream, server_version=manifest["source"]["server_version"])
        metadata = {info["name"]: collection_metadata(db, info) for info in infos}  # the prelude's
        writer.begin(
            [
                (db_name, info["name"], metadata[info["name"]], info.get("type", "collection"))
                for info in infos
            ]
        )
        exports = collection_streams(db, infos, metadata=metadata, tally=tally, progress=progress)
        with contextlib.closing(exports):  # on a failure, the reading thread stops at once
            for exported in exports:
                name = exported.info["name"]
                if exported.info.get("type") == "view":  # no documents: an empty namespace, as mongodump's
                    writer.end(db_name, name)
                    manifest["views"][name] = {}
                    continue
                content, written = exported.content, 0
                for batch in exported.batches:
                    writer.write(db_name, name, batch)
                    written += len(batch)
                if written != content.bytes:
                    raise DamagedDumpError(
                        f"{db_name}.{name}: the server's batches did not frame as BSON documents."
                    )
                manifest["collections"][name] = {
                    "documents": content.count,
                    "bytes": content.bytes,
                    "content_hash": content.hexdigest(),
                    "crc64": writer.end(db_name, name),
                }
        writer.finish()
        if compress:
            stream.close()
        sink.flush()
        if to_file:
            sink.close()
    except BaseException as exc:
        if to_file:
            with contextlib.suppress(OSError):
                sink.close()
            partial.unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
                raise disk_full_error(exc, client, db_name, out, free, compress) from exc
        raise
    progress.done()
    manifest["archive"] = {
        "name": out.name if to_file else None,
        "format_version": FORMAT_VERSION,
        "sha256": sink.sha256.hexdigest(),
        "size": sink.size,
    }
    if to_file:
        if sha256_file(partial) != manifest["archive"]["sha256"]:
            partial.unlink()
            raise DamagedDumpError(f"{partial}: did not read back as written (its SHA-256 differs).")
        os.replace(partial, out)
        _write_atomically(manifest_path_for(out), json.dumps(manifest, indent=2) + "\n")
    return manifest


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + STAGING_SUFFIX)
    write_private(partial, text)
    os.replace(partial, path)


# -- reading -----------------------------------------------------------------------------------
@dataclass
class ArchiveCollection(MetadataFields):
    """One namespace of an archive: its metadata, what the check found, and where its documents are."""

    db: str
    name: str
    type: str
    metadata: dict
    documents_count: int = 0
    bytes: int = 0
    content_hash: str = ""
    crc64: int = 0
    # (offset, length) of each run of documents in the uncompressed archive, in archive order.
    segments: list[tuple[int, int]] = field(default_factory=list)
    file: _ArchiveFile | None = field(default=None, repr=False)

    def documents(self) -> Iterator[bytes]:
        """The raw documents in archive order, read back from the checked file by offset."""
        file = self.file
        if file is None:
            return iter(())
        file.unchanged()
        return (
            raw
            for offset, length in self.segments
            for raw in frame_documents(file.reader(offset, length), file.label, base=offset)
        )

    def report(self) -> dict:
        return {"documents": self.documents_count, "bytes": self.bytes, "content_hash": self.content_hash}


class _ArchiveFile:
    """The uncompressed archive, on disk: the file itself, or our unnamed temporary copy."""

    def __init__(self, file, label: str) -> None:
        self.file = file
        self.label = label
        self.fd = file.fileno()
        self.stamp = self._stamp()

    def _stamp(self) -> tuple[int, int]:
        stat = os.fstat(self.fd)
        return stat.st_size, stat.st_mtime_ns

    def unchanged(self) -> None:
        if self.fd < 0:
            raise ValueError(f"{self.label}: the archive was closed; read it again.")
        if self._stamp() != self.stamp:
            raise DamagedArchiveError(f"{self.label}: changed on disk since it was checked; check it again.")

    def reader(self, offset: int, length: int) -> Callable[[int], bytes]:
        """read(size) over ``length`` bytes from ``offset``; position-free, so readers may interleave."""
        state = {"offset": offset, "left": length}

        def read(size: int) -> bytes:
            size = min(size, state["left"])
            if size <= 0:
                return b""
            self.unchanged()  # a closed file's descriptor may belong to another file by now
            data = os.pread(self.fd, size, state["offset"])
            state["offset"] += len(data)
            state["left"] -= len(data)
            return data

        return read

    def close(self) -> None:
        self.file.close()
        self.fd = -1


@dataclass
class ArchiveDump:
    """One database of an archive, shaped like a folder's Dump for import_dump and verify.

    ``root`` names the archive (a pipe's is ``stdin-<sha256 prefix>.archive`` in the current
    folder), for the rollback snapshot's place and identity.
    """

    root: Path
    db_name: str
    manifest: dict | None
    collections: dict[str, ArchiveCollection]
    views: dict[str, ArchiveCollection] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    checksums_checked = True  # every collection's CRC-64, at least

    def check(self, *, progress: Progress | None = None, documents: bool = True) -> dict:
        """The per-collection counts the archive's check found (it was checked whole when read).

        Raises DamagedArchiveError when the file changed since.
        """
        for collection in self.collections.values():
            if collection.file is not None:
                collection.file.unchanged()
                break
        return {name: collection.report() for name, collection in self.collections.items()}


@dataclass
class Archive:
    """A checked archive: its header, its namespaces, and (for a file) the manifest beside it."""

    label: str
    root: Path
    header: dict
    namespaces: dict[tuple[str, str], ArchiveCollection]
    manifest: dict | None
    sha256: str
    size: int
    gzip: bool
    spooled_in: str | None  # the folder of the temporary copy, when there is one
    file: _ArchiveFile | None = field(default=None, repr=False)

    @property
    def databases(self) -> list[str]:
        """The databases the archive holds (the oplog's "" database aside)."""
        return sorted({db for db, _ in self.namespaces if db != ""})

    @property
    def has_oplog(self) -> bool:
        return OPLOG in self.namespaces

    def dump(self, db_name: str | None = None) -> ArchiveDump:
        """The database ``db_name`` (or the only one) as an ArchiveDump.

        Raises ValueError when the archive holds several databases and none was named, or not
        the one named, listing those it holds.
        """
        held = self.databases
        listed = ", ".join(held) or "none"
        if db_name is None:
            if len(held) != 1:
                raise ValueError(
                    f"{self.label} holds {len(held)} databases ({listed}): pick one with --source-db."
                )
            db_name = held[0]
        elif db_name not in held:
            raise ValueError(f"{self.label} holds no database {db_name!r} (it holds: {listed}).")
        collections, views, warnings, skipped = {}, {}, [], []
        for (db, name), collection in sorted(self.namespaces.items()):
            if db != db_name:
                continue
            if collection.type == "view":
                views[name] = collection
            elif collection.type == "timeseries" or name.startswith("system."):
                skipped.append(name)
            else:
                collections[name] = collection
        if self.has_oplog:
            warnings.append(
                f"{self.label} holds an oplog (mongodump --oplog): it is imported without it; "
                "point-in-time replay is not supported."
            )
        if skipped:
            warnings.append(f"time-series and system collections not imported: {', '.join(skipped)}.")
        if self.manifest is None:
            reordered = reordering_warning(
                {n: c.options for n, c in {**collections, **views}.items()},
                tool_version=str(self.header.get("tool_version") or "") or None,
            )
            warnings += [reordered] if reordered else []
        return ArchiveDump(
            root=self.root,
            db_name=db_name,
            manifest=self.manifest,
            collections=collections,
            views=views,
            warnings=warnings,
        )

    def close(self) -> None:
        """Close the file; a temporary copy disappears with it."""
        if self.file is not None:
            self.file.close()
            self.file = None

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Input:
    """The raw bytes of the archive as read: counted and hashed (the manifest's SHA-256 is of these)."""

    def __init__(self, stream, label: str) -> None:
        self.stream = stream
        self.label = label
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.head = b""

    def read(self, size: int = -1) -> bytes:
        if self.head:
            data, self.head = self.head, b""
        else:
            try:
                data = self.stream.read(size)
            except OSError as exc:
                raise DamagedArchiveError(f"{self.label}: cannot be read ({exc}).") from None
        self.sha256.update(data)
        self.size += len(data)
        return data

    def peek(self, size: int) -> bytes:
        """The first ``size`` bytes (fewer for a shorter input), read again by the next read()."""
        while len(self.head) < size:
            data = self.stream.read(size - len(self.head))
            if not data:
                break
            self.head += data
        return self.head


class _Scanner:
    """One pass over the uncompressed archive: framing, prelude, blocks, CRC-64 and content hashes."""

    def __init__(self, read: Callable[[int], bytes], label: str, progress: Progress) -> None:
        self._read = read
        self.label = label
        self.progress = progress
        self.buf = b""
        self.pos = 0
        self.base = 0  # offset of buf[0] in the uncompressed archive
        self.ended = False
        self.namespaces: dict[tuple[str, str], ArchiveCollection] = {}
        self.crc: dict[tuple[str, str], int | None] = {}
        self.content: dict[tuple[str, str], ContentHash] = {}
        self.closed: set[tuple[str, str]] = set()
        self.documents = 0
        self.bytes = 0

    def fail(self, message: str, offset: int | None = None):
        where = f" at byte {offset}" if offset is not None else ""
        return DamagedArchiveError(f"{self.label}: {message}{where}.")

    def available(self, size: int) -> bool:
        """Whether ``size`` more bytes can be had, reading more (a megabyte or more) as needed."""
        while len(self.buf) - self.pos < size and not self.ended:
            chunk = self._read(max(READ_BYTES, size - (len(self.buf) - self.pos)))
            if not chunk:
                self.ended = True
                break
            self.base += self.pos
            self.buf = self.buf[self.pos :] + chunk
            self.pos = 0
        return len(self.buf) - self.pos >= size

    def int32(self, what: str) -> int | None:
        """The next four bytes as a length or terminator; None at a clean end of the input."""
        if not self.available(4):
            if len(self.buf) == self.pos:
                return None
            raise self.fail(f"truncated in {what}", self.base + self.pos)
        return _INT32.unpack_from(self.buf, self.pos)[0]

    def document(self, what: str) -> dict:
        """The next BSON document (a header or prelude entry), decoded."""
        offset = self.base + self.pos
        length = self.int32(what)
        if length is None:
            raise self.fail(f"truncated: {what} is missing", offset)
        if length < 5 or length > MAX_DOCUMENT_BYTES:
            raise self.fail(f"bad length {length} for {what}", offset)
        if not self.available(length):
            raise self.fail(f"truncated in {what}", offset)
        raw = self.buf[self.pos : self.pos + length]
        self.pos += length
        try:
            return bson.decode(raw, DECODE)
        except Exception as exc:  # InvalidBSON and the decoder's other complaints
            raise self.fail(f"{what} is not valid BSON ({exc})", offset) from None

    def terminator(self) -> bool:
        if self.int32("a terminator") == -1:
            self.pos += 4
            return True
        return False

    def run(self) -> dict:
        """Check the whole archive; returns its header. Raises DamagedArchiveError."""
        if not self.available(4) or self.buf[:4] != MAGIC:
            start = self.buf[:4].hex(" ") or "nothing"
            raise self.fail(
                f"not a mongodump archive: it begins with {start}, not the archive's magic number "
                f"{MAGIC.hex(' ')} (nor gzip's 1f 8b)"
            )
        self.pos = 4
        header = self.document("the archive header")
        if header.get("version") != FORMAT_VERSION:
            raise self.fail(
                f"archive format version {header.get('version')!r}; only {FORMAT_VERSION} is known"
            )
        while not self.terminator():
            self._prelude_entry()
        while True:
            offset = self.base + self.pos
            first = self.int32("a block header")
            if first is None:
                break
            if first == -1:
                raise self.fail("a block begins with a terminator (two terminators in a row)", offset)
            self._block(offset)
        self._finish()
        self.progress.done()
        return header

    def _prelude_entry(self) -> None:
        offset = self.base + self.pos
        entry = self.document("a prelude entry")
        db, name, text = entry.get("db"), entry.get("collection"), entry.get("metadata", "")
        if not isinstance(db, str) or not isinstance(name, str) or not name or not isinstance(text, str):
            raise self.fail("a prelude entry without its db, collection or metadata", offset)
        namespace = (db, name)
        if namespace in self.namespaces:
            raise self.fail(f"the prelude lists {db}.{name} twice", offset)
        try:
            metadata = json_util.loads(text, json_options=READ_JSON_OPTIONS) if text else {}
        except (ValueError, TypeError) as exc:
            raise self.fail(
                f"the metadata of {db}.{name} is not valid Extended JSON ({exc})", offset
            ) from None
        if not isinstance(metadata, dict):
            raise self.fail(f"the metadata of {db}.{name} is not a JSON object", offset)
        kind = entry.get("type") or metadata.get("type") or "collection"
        self.namespaces[namespace] = ArchiveCollection(db=db, name=name, type=kind, metadata=metadata)

    def _namespace(self, db: str, name: str, offset: int) -> tuple[str, str]:
        namespace = (db, name)
        if namespace not in self.namespaces:
            buckets = name.removeprefix("system.buckets.")
            owner = self.namespaces.get((db, buckets))
            if buckets == name or owner is None or owner.type != "timeseries":
                raise self.fail(f"a block of {db}.{name}, which the prelude does not list", offset)
            self.namespaces[namespace] = ArchiveCollection(db=db, name=name, type="buckets", metadata={})
        if namespace in self.closed:
            raise self.fail(f"a block of {db}.{name} after its end-of-collection header", offset)
        if namespace not in self.crc:
            self.crc[namespace] = None
            self.content[namespace] = ContentHash()
        return namespace

    def _block(self, offset: int) -> None:
        header = self.document("a block header")
        db, name, eof, crc = header.get("db"), header.get("collection"), header.get("EOF"), header.get("CRC")
        if not (isinstance(db, str) and isinstance(name, str) and name and isinstance(eof, bool)):
            raise self.fail("a block header without its db, collection and EOF", offset)
        namespace = self._namespace(db, name, offset)
        if not eof:
            self._body(namespace)
            return
        if not isinstance(crc, int):
            raise self.fail(f"the end-of-collection header of {db}.{name} has no CRC", offset)
        if not self.terminator():
            raise self.fail(f"the end-of-collection header of {db}.{name} is followed by documents", offset)
        computed = signed64(self.crc[namespace] or 0)
        content = self.content[namespace]
        if computed != crc:
            raise self.fail(
                f"CRC-64 mismatch for {db}.{name}: its end-of-collection header (at byte {offset}) says "
                f"{crc}, its {content.count} documents give {computed}; the archive is damaged"
            )
        collection = self.namespaces[namespace]
        collection.documents_count, collection.bytes = content.count, content.bytes
        collection.content_hash, collection.crc64 = content.hexdigest(), crc
        self.closed.add(namespace)

    def _body(self, namespace: tuple[str, str]) -> None:
        """The documents of one block up to its terminator: framed, CRC'd and content-hashed."""
        content, segments = self.content[namespace], self.namespaces[namespace].segments
        crc = self.crc[namespace]
        label = f"{namespace[0]}.{namespace[1]}"
        while True:
            if not self.available(4):
                raise self.fail(f"truncated in a block of {label}", self.base + self.pos)
            buf, start = self.buf, self.pos
            pos, end, view, need, terminated = start, len(buf), memoryview(buf), 4, False
            while end - pos >= 4:
                (length,) = _INT32.unpack_from(buf, pos)
                if length == -1:
                    terminated = True
                    break
                if length < 5 or length > MAX_DOCUMENT_BYTES:
                    raise self.fail(f"bad document length {length} in a block of {label}", self.base + pos)
                if end - pos < length:
                    need = length
                    break
                if buf[pos + length - 1] != 0:
                    raise self.fail(f"a document of {label} is not terminated", self.base + pos)
                content.add(view[pos : pos + length])
                pos += length
            if pos > start:
                crc = crc64(view[start:pos], crc)
                offset = self.base + start
                if segments and sum(segments[-1]) == offset:
                    segments[-1] = (segments[-1][0], segments[-1][1] + pos - start)
                else:
                    segments.append((offset, pos - start))
            self.pos = pos
            self.progress.update(f"checking {label}", content.count, content.bytes)
            if terminated:
                self.pos += 4
                self.crc[namespace] = crc
                return
            if not self.available(need):
                raise self.fail(f"truncated in a document of {label}", self.base + self.pos)

    def _finish(self) -> None:
        unfinished = sorted(
            f"{db}.{name}"
            for (db, name), collection in self.namespaces.items()
            if collection.type != "timeseries" and (db, name) not in self.closed
        )
        if unfinished:
            raise self.fail(
                f"ends before {', '.join(unfinished)} is complete (no end-of-collection header): truncated?",
                self.base + self.pos,
            )


def read_archive(
    source: Path | str | BinaryIO,
    *,
    spool_dir: Path | str | None = None,
    progress: Progress | None = None,
    say: Callable[[str], None] | None = None,
) -> Archive:
    """Read and check a whole archive (a file, ``"-"`` for standard input, or a binary stream).

    Every collection's CRC-64 and all framing are checked, and the sibling manifest when there is
    one, before this returns: callers write nothing before. gzip is told from the bytes. A pipe or
    a gzipped archive is copied, uncompressed, to an unnamed temporary file in ``spool_dir`` (the
    system's temporary folder by default), and ``say`` is told so. Close the result (or use it as a
    context manager). Raises DamagedArchiveError for a damaged archive or manifest,
    ArchiveSpoolError when the temporary copy cannot be written, ValueError for a terminal as input.
    """
    progress = progress or Progress()
    say = say or (lambda message: None)
    path = None
    if isinstance(source, str | Path) and str(source) != "-":
        path = Path(source)
        if path.is_dir():
            raise DamagedArchiveError(f"{path}: a folder, not an archive file (read it as a folder dump).")
        if not path.is_file():
            raise DamagedArchiveError(f"{path}: no such file.")
        raw_stream, label = open(path, "rb"), str(path)  # noqa: SIM115 - kept open as the Archive's file
    else:
        raw_stream = sys.stdin.buffer if str(source) == "-" else source
        label = "standard input" if str(source) == "-" else "the input stream"
        if getattr(raw_stream, "isatty", lambda: False)():
            raise ValueError("standard input is a terminal: pipe an archive into it, or name a file.")
    spool = None
    try:
        raw = _Input(raw_stream, label)
        compressed = raw.peek(2) == GZIP_MAGIC
        if compressed or path is None:
            spool, spooled_in = _open_spool(spool_dir)
            doing = "Reading" if path is None else "Decompressing"
            say(
                f"{doing} {label} into a temporary file in {spooled_in}, to check the whole archive "
                "before anything is written."
            )
        plain = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        scanner = _Scanner(_spooling_reader(plain, spool, label, compressed), label, progress)
        header = scanner.run()
        if spool is not None:
            _flush_spool(spool)
        manifest = _checked_manifest(path, raw, scanner.namespaces) if path is not None else None
        file = _ArchiveFile(spool if spool is not None else raw_stream, label)
    except BaseException:
        if spool is not None:
            spool.close()
        if path is not None:
            raw_stream.close()
        raise
    if spool is not None and path is not None:
        raw_stream.close()
    for collection in scanner.namespaces.values():
        collection.file = file
    sha256 = raw.sha256.hexdigest()
    return Archive(
        label=label,
        root=path if path is not None else Path.cwd() / f"stdin-{sha256[:12]}.archive",
        header=header,
        namespaces=scanner.namespaces,
        manifest=manifest,
        sha256=sha256,
        size=raw.size,
        gzip=compressed,
        spooled_in=spooled_in if spool is not None else None,
        file=file,
    )


def _open_spool(spool_dir):
    folder = Path(spool_dir) if spool_dir is not None else Path(tempfile.gettempdir())
    if not folder.is_dir():
        raise ArchiveSpoolError(f"{folder}: no such folder for the temporary copy of the archive.")
    try:
        return tempfile.TemporaryFile(dir=folder), str(folder)  # noqa: SIM115 - the Archive closes it
    except OSError as exc:
        raise ArchiveSpoolError(
            f"{folder}: cannot hold a temporary copy of the archive ({exc.strerror})."
        ) from None


def _spooling_reader(plain, spool, label: str, compressed: bool) -> Callable[[int], bytes]:
    """read(size) of the uncompressed archive that also copies it into ``spool`` when given."""

    def read(size: int) -> bytes:
        try:
            data = plain.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            if isinstance(exc, DamagedArchiveError):
                raise
            kind = "not a valid gzip stream" if compressed else "cannot be read"
            raise DamagedArchiveError(f"{label}: {kind} ({exc}).") from None
        if spool is not None and data:
            try:
                spool.write(data)
            except OSError as exc:
                raise ArchiveSpoolError(
                    f"cannot copy {label} to a temporary file ({exc.strerror}): free some space or "
                    "choose another folder with --spool-dir."
                ) from None
        return data

    return read


def _flush_spool(spool) -> None:
    try:
        spool.flush()
    except OSError as exc:
        raise ArchiveSpoolError(
            f"cannot finish the temporary copy of the archive ({exc.strerror})."
        ) from None


def _checked_manifest(path: Path, raw: _Input, namespaces: dict) -> dict | None:
    """The sibling manifest, checked against what the pass over the archive found; None without one."""
    manifest_path = manifest_path_for(path)
    if not manifest_path.exists():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
        facts, expected = manifest["archive"], manifest["collections"]
        db_name = manifest["database"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DamagedArchiveError(f"{manifest_path}: not a valid archive manifest ({exc}).") from None
    if raw.size != facts.get("size"):
        state = "truncated" if raw.size < (facts.get("size") or 0) else "longer than written"
        raise DamagedArchiveError(
            f"{path}: {state}: {raw.size} bytes where {manifest_path.name} says {facts.get('size')}."
        )
    if raw.sha256.hexdigest() != facts.get("sha256"):
        raise DamagedArchiveError(f"{path}: its SHA-256 does not match {manifest_path.name}.")
    found = {name: c for (db, name), c in namespaces.items() if db == db_name and c.type != "view"}
    views = {name for (db, name), c in namespaces.items() if db == db_name and c.type == "view"}
    if views != set(manifest.get("views") or {}):
        raise DamagedArchiveError(
            f"{path}: holds views {', '.join(sorted(views)) or 'none'} of {db_name}, where "
            f"{manifest_path.name} lists {', '.join(sorted(manifest.get('views') or {})) or 'none'}."
        )
    if set(found) != set(expected):
        raise DamagedArchiveError(
            f"{path}: holds collections {', '.join(sorted(found)) or 'none'} of {db_name}, where "
            f"{manifest_path.name} lists {', '.join(sorted(expected)) or 'none'}."
        )
    for name, collection in found.items():
        wanted = {key: expected[name].get(key) for key in ("documents", "bytes", "content_hash", "crc64")}
        if {**collection.report(), "crc64": collection.crc64} != wanted:
            raise DamagedArchiveError(f"{path}: {db_name}.{name} does not match {manifest_path.name}.")
    return manifest


# -- what import and verify read ----------------------------------------------------------------
def dump_label(path: str | None, archive: str | None) -> str:
    """How a dump named by ``--from``/``--dump`` or ``--archive`` is shown and recorded."""
    named = archive if archive is not None else path
    return "standard input" if named == "-" else named or ""


@contextlib.contextmanager
def dump_source(
    *,
    path: str | None,
    archive: str | None,
    source_db: str | None = None,
    collections: list[str] | None = None,
    spool_dir: str | None = None,
    say: Callable[[str], None] | None = None,
    path_option: str = "--from",
    refused: str = "Refused, nothing written",
) -> Iterator[Dump | ArchiveDump]:
    """The dump a command reads, checked whole: ``path`` (a folder, or a file read as an archive)
    or ``archive`` (a file, or ``"-"`` for standard input), limited to ``collections``.

    ``source_db`` picks the database of a dump that holds several; ``refused`` begins a refusal's
    message. Raises CommandError: exit 2
    for both or neither of ``path_option`` and --archive, a terminal as standard input, or a
    temporary copy that cannot be written; exit 1 for a damaged dump (nothing is written then),
    an unknown database or collection.
    """
    if (path is None) == (archive is None):
        raise cannot_run(f"Name the dump with exactly one of {path_option} PATH and --archive [PATH|-].")
    source = archive if archive is not None else path
    if archive is None and not Path(path).exists():
        raise refuse(f"{refused}: {path}: no such folder or file.")
    opened = None
    try:
        if archive is None and Path(path).is_dir():
            dump = load_dump(Path(path), source_db)
        else:
            try:
                opened = read_archive(source, spool_dir=spool_dir, say=say)
            except (ValueError, ArchiveSpoolError) as exc:  # a terminal as input; no room for the copy
                raise cannot_run(str(exc)) from None
            dump = opened.dump(source_db)
        dump = select_collections(dump, collections)
    except BaseException as exc:
        if opened is not None:
            opened.close()
        if isinstance(exc, DamagedDumpError):
            raise refuse(f"{refused}: {exc}") from None
        if isinstance(exc, ValueError):  # a database or collection the dump does not hold
            raise refuse(str(exc)) from None
        raise
    try:
        yield dump
    finally:
        if opened is not None:
            opened.close()
