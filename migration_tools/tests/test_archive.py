"""mongodump's archive format: our writer and reader, damaged archives, pipes, and the real tools."""

import io
import os
import subprocess
import sys
import threading

import bson
import pytest
from bson import Int64

from migration_tools.archive import (
    ArchiveSpoolError,
    ArchiveWriter,
    DamagedArchiveError,
    crc64,
    dump_database_archive,
    manifest_path_for,
    read_archive,
    signed64,
)
from migration_tools.bsonfiles import RAW
from migration_tools.dump import collection_metadata, list_dumpable, select_collections
from migration_tools.restore import import_dump
from migration_tools.snapshots import default_snapshot_dir
from migration_tools.tests.conftest import compare
from migration_tools.tests.factories import populate_awkward
from migration_tools.verify import format_report, verify

AWKWARD = ("every.type", "mixed_ids", "field_order", "validated", "indexed", "empty", "empty.with.dots")


def _raw_documents(db, name):
    return [doc.raw for doc in db.get_collection(name, codec_options=RAW).find({}, sort=[("_id", 1)])]


def _export(source, path, **kwargs):
    return dump_database_archive(source.client, source.name, path, source_uri=source.uri, **kwargs)


def _import(archive_source, target, *, source_db=None, **kwargs):
    """Read (and so check) an archive, then import it: the order import_atlas follows."""
    with read_archive(archive_source, **kwargs) as archive:
        dump = archive.dump(source_db)
        return dump, import_dump(
            target.client, dump, target_db=target.name, target_uri=target.uri, snapshot_dir=None
        )


def _assert_same_database(source, target):
    result = compare(source, target)
    assert result.identical, format_report(result)
    for name in source.db.list_collection_names():
        assert _raw_documents(target.db, name) == _raw_documents(source.db, name), name


def _assert_imported_from_mongodump(source, target, path=None):
    """Documents and indexes as the source's, byte for byte; options alike in meaning.

    mongodump 100.8.0 writes the nested documents of collection options in random order
    (TOOLS-3411): in one run out of six, {"$jsonSchema": {"required", "bsonType"}} for
    {"bsonType", "required"}. We import what the archive says; verify compares a $jsonSchema
    without regard to order, as MongoDB reads it (migration_tools.options).
    """
    result = compare(source, target)
    assert result.identical, format_report(result)
    for name in source.db.list_collection_names():
        assert _raw_documents(target.db, name) == _raw_documents(source.db, name), name
    if path is not None:
        with read_archive(path) as archive:
            from_archive = verify(
                archive.dump(source.name),
                target.db,
                source_label="archive",
                target_label="t",
                source_db=source.name,
            )
        assert from_archive.identical, format_report(from_archive)


# -- CRC-64 --------------------------------------------------------------------------------------
def _go_ecma_crc64(data: bytes) -> int:
    """Go's hash/crc64 with crc64.MakeTable(crc64.ECMA), byte by byte, as its source defines it."""
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ 0xC96C5795D7870F42 if crc & 1 else crc >> 1
        table.append(crc)
    crc = 0xFFFFFFFFFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFFFFFFFFFF


def test_crc64_is_gos_ecma_table_and_continues_across_pieces():
    data = os.urandom(5000)
    assert crc64(b"123456789") == 0x995DC9BBDF1939FA  # the catalogue's check value for CRC-64/XZ
    assert crc64(data) == _go_ecma_crc64(data)
    assert crc64(data[3000:], crc64(data[:3000])) == crc64(data)
    assert crc64(b"") == 0


# -- our writer, our reader ---------------------------------------------------------------------
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_awkward_bson_round_trip_through_an_archive(local_db, atlas_db, tmp_path, compress):
    populate_awkward(local_db.db)
    path = tmp_path / "studymaster.archive"
    manifest = _export(local_db, path, compress=compress)

    assert sorted(manifest["collections"]) == sorted(AWKWARD)
    assert manifest_path_for(path).exists() and not path.with_name(path.name + ".partial").exists()
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if compress else b"\x6d\xe2")
    dump, report = _import(path, atlas_db)
    assert dump.manifest is not None and report.checksums_checked and report.conflicts == 0
    _assert_same_database(local_db, atlas_db)
    with read_archive(path) as archive:  # the archive itself verifies against the target
        result = verify(
            archive.dump(),
            atlas_db.db,
            source_label=str(path),
            target_label="target",
            source_db=local_db.name,
        )
    assert result.identical, format_report(result)


@pytest.mark.slow
def test_seven_megabyte_documents_round_trip(local_db, atlas_db, tmp_path):
    populate_awkward(local_db.db, big_documents=True)
    _export(local_db, tmp_path / "big.archive")
    _, report = _import(tmp_path / "big.archive", atlas_db)
    assert report.inserted == sum(local_db.db[name].count_documents({}) for name in (*AWKWARD, "big"))
    _assert_same_database(local_db, atlas_db)


def _interleaved_archive(source, path, *, batch_size=3) -> None:
    """An archive whose collections' blocks alternate, a few documents at a time, as mongodump's do."""
    db = source.db
    infos = list_dumpable(db, views=True)
    batches = {
        info["name"]: list(db[info["name"]].find_raw_batches({}, sort=[("_id", 1)], batch_size=batch_size))
        for info in infos
        if info["type"] == "collection"
    }
    with open(path, "wb") as stream:
        writer = ArchiveWriter(stream, server_version="8.0.0", concurrent_collections=len(infos))
        writer.begin(
            [(source.name, info["name"], collection_metadata(db, info), info["type"]) for info in infos]
        )
        while any(batches.values()):
            for name, pending in batches.items():
                if pending:
                    writer.write(source.name, name, pending.pop(0))
        for info in infos:
            writer.end(source.name, info["name"])
        writer.finish()


def test_the_writer_keeps_to_the_headers_concurrent_collections():
    writer = ArchiveWriter(io.BytesIO(), server_version="8.0.0", concurrent_collections=2)
    writer.begin([("d", name, {}, "collection") for name in "abc"])
    writer.write("d", "a", bson.encode({"_id": 1}))
    writer.write("d", "b", bson.encode({"_id": 1}))
    with pytest.raises(ValueError, match="namespace number 3 open at once; the header allows 2"):
        writer.write("d", "c", bson.encode({"_id": 1}))
    writer.end("d", "a")
    writer.write("d", "c", bson.encode({"_id": 1}))
    with pytest.raises(ValueError, match="d.a has already ended"):
        writer.write("d", "a", bson.encode({"_id": 2}))
    with pytest.raises(ValueError, match="d.b, d.c were not ended"):
        writer.finish()


def test_interleaved_collections_are_read_back_in_order(local_db, atlas_db, tmp_path):
    populate_awkward(local_db.db)
    path = tmp_path / "interleaved.archive"
    _interleaved_archive(local_db, path)
    with read_archive(path) as archive:
        dump = archive.dump()
        assert len(dump.collections["indexed"].segments) > 1
        assert [raw for raw in dump.collections["indexed"].documents()] == _raw_documents(
            local_db.db, "indexed"
        )
    _import(path, atlas_db)
    _assert_same_database(local_db, atlas_db)


def test_writing_to_a_stream_leaves_no_manifest_and_reads_back(local_db, tmp_path):
    populate_awkward(local_db.db)
    stream = io.BytesIO()
    manifest = _export(local_db, stream)
    assert list(tmp_path.iterdir()) == []
    assert manifest["archive"]["size"] == len(stream.getvalue()) and manifest["archive"]["name"] is None
    with read_archive(io.BytesIO(stream.getvalue()), spool_dir=tmp_path) as archive:
        counts = archive.dump().check()
    assert {name: item["documents"] for name, item in counts.items()} == {
        name: item["documents"] for name, item in manifest["collections"].items()
    }


def test_an_existing_file_is_refused_and_a_failed_export_leaves_no_file(local_db, tmp_path):
    populate_awkward(local_db.db)
    taken = tmp_path / "taken.archive"
    taken.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="already exists"):
        _export(local_db, taken)
    assert taken.read_bytes() == b"keep me"

    class FailingTally:
        def start(self, name):
            pass

        def add(self, name, documents):
            raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        _export(local_db, tmp_path / "new.archive", tally=FailingTally())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.archive"]


def test_collection_filter_for_an_archive_and_a_folder(local_db, atlas_db, tmp_path, export):
    populate_awkward(local_db.db)
    _export(local_db, tmp_path / "a.archive")
    with read_archive(tmp_path / "a.archive") as archive:
        dump = select_collections(archive.dump(), ["validated", "empty"])
        report = import_dump(
            atlas_db.client, dump, target_db=atlas_db.name, target_uri=atlas_db.uri, snapshot_dir=None
        )
        with pytest.raises(ValueError, match="no collection named nope"):
            select_collections(archive.dump(), ["nope"])
    assert sorted(c.name for c in report.collections) == ["empty", "validated"]
    assert sorted(atlas_db.db.list_collection_names()) == ["empty", "validated"]
    from migration_tools.dump import load_dump

    folder = select_collections(load_dump(export(local_db)), ["indexed"])
    assert list(folder.collections) == ["indexed"] and list(folder.check()) == ["indexed"]


# -- damaged archives ---------------------------------------------------------------------------
def _segment(path, name):
    with read_archive(path) as archive:
        collection = archive.dump().collections[name]
        return collection, collection.segments[0]


def _flip(data: bytearray, offset: int) -> None:
    data[offset] ^= 0x01


def _damage_document(data, collection, segment):
    _flip(data, segment[0] + segment[1] - 3)  # a character of the last document's last string


def _damage_block_header(data, collection, segment):
    header = bson.encode({"db": collection.db, "collection": collection.name, "EOF": False, "CRC": Int64(0)})
    start = data.rfind(header, 0, segment[0])
    _flip(data, start + header.index(b"validated") + 8)  # validated -> validatee


def _wrong_crc(data, collection, segment):
    eof = {"db": collection.db, "collection": collection.name, "EOF": True, "CRC": Int64(collection.crc64)}
    good, bad = bson.encode(eof), bson.encode({**eof, "CRC": Int64(collection.crc64 + 1)})
    data[:] = data.replace(good, bad)


def _truncate(data, collection, segment):
    del data[segment[0] + segment[1] // 2 :]


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (_damage_document, "CRC-64 mismatch for {db}.validated"),
        (_damage_block_header, "a block of {db}.validatee, which the prelude does not list"),
        (_wrong_crc, "CRC-64 mismatch for {db}.validated"),
        (_truncate, "truncated in a document of {db}.validated"),
    ],
    ids=["byte in a document", "byte in a block header", "wrong CRC", "truncated"],
)
def test_damaged_archive_is_refused_naming_the_damage_before_any_write(
    local_db, atlas_db, tmp_path, damage, words
):
    populate_awkward(local_db.db)
    path = tmp_path / "damaged.archive"
    _export(local_db, path)
    manifest_path_for(path).unlink()  # the archive's own checks, not the manifest's SHA-256
    data = bytearray(path.read_bytes())
    damage(data, *_segment(path, "validated"))
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedArchiveError) as caught:
        _import(path, atlas_db)
    assert str(caught.value).startswith(f"{path}: ")
    assert words.format(db=local_db.name) in str(caught.value)
    assert atlas_db.db.list_collection_names() == []


def test_damaged_gzip_archive_is_refused(local_db, tmp_path):
    populate_awkward(local_db.db)
    path = tmp_path / "damaged.gz"
    _export(local_db, path, compress=True)
    manifest_path_for(path).unlink()
    data = bytearray(path.read_bytes())
    _flip(data, len(data) // 2)
    path.write_bytes(bytes(data))
    with pytest.raises(
        DamagedArchiveError, match=r"not a valid gzip stream|CRC-64 mismatch|bad document length"
    ):
        read_archive(path, spool_dir=tmp_path)


def test_the_manifest_vouches_for_the_metadata_the_format_leaves_unchecked(local_db, tmp_path):
    populate_awkward(local_db.db)
    path = tmp_path / "a.archive"
    _export(local_db, path)
    data = path.read_bytes()
    path.write_bytes(data.replace(b"email_unique", b"email_uniquf", 1))  # an index name, in the prelude
    with pytest.raises(DamagedArchiveError, match="its SHA-256 does not match a.archive.manifest.json"):
        read_archive(path)
    manifest_path_for(path).unlink()
    with read_archive(path) as archive:  # without the manifest, only the form of the metadata is checked
        assert "email_uniquf" in [index["name"] for index in archive.dump().collections["indexed"].indexes]


def test_not_an_archive_and_a_changed_file_are_refused(local_db, tmp_path):
    populate_awkward(local_db.db)
    (tmp_path / "x.bson").write_bytes(bson.encode({"a": 1}))
    with pytest.raises(DamagedArchiveError, match="not a mongodump archive: it begins with 0c 00 00 00"):
        read_archive(tmp_path / "x.bson")
    with pytest.raises(DamagedArchiveError, match="no such file"):
        read_archive(tmp_path / "missing.archive")
    with pytest.raises(DamagedArchiveError, match="a folder, not an archive file"):
        read_archive(tmp_path)
    path = tmp_path / "a.archive"
    _export(local_db, path)
    with read_archive(path) as archive:
        dump = archive.dump()
        with open(path, "ab") as stream:
            stream.write(b"\0")
        with pytest.raises(DamagedArchiveError, match="changed on disk since it was checked"):
            dump.check()
    with pytest.raises(ValueError, match="the archive was closed"):
        next(dump.collections["validated"].documents())


# -- pipes, several databases, the oplog ---------------------------------------------------------
def _feed(data: bytes):
    """The read end of a pipe that a thread fills with ``data``, as a shell pipe would."""
    read_fd, write_fd = os.pipe()

    def pump():
        with os.fdopen(write_fd, "wb") as stream:
            stream.write(data)

    threading.Thread(target=pump, daemon=True).start()
    return os.fdopen(read_fd, "rb")


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_a_pipe_is_spooled_to_an_unnamed_temporary_file_and_said_so(local_db, atlas_db, tmp_path, compress):
    populate_awkward(local_db.db)
    stream = io.BytesIO()
    _export(local_db, stream, compress=compress)
    spool, said = tmp_path / "spool", []
    spool.mkdir()
    with _feed(stream.getvalue()) as pipe, read_archive(pipe, spool_dir=spool, say=said.append) as archive:
        assert archive.spooled_in == str(spool) and archive.gzip is compress
        assert list(spool.iterdir()) == []  # unnamed: nothing is left behind, even after a crash
        dump = archive.dump()
        assert dump.root.name.startswith("stdin-") and dump.manifest is None
        import_dump(
            atlas_db.client, dump, target_db=atlas_db.name, target_uri=atlas_db.uri, snapshot_dir=None
        )
    assert said == [
        f"Reading the input stream into a temporary file in {spool}, to check the whole archive before "
        "anything is written."
    ]
    _assert_same_database(local_db, atlas_db)
    with pytest.raises(ArchiveSpoolError, match="no such folder"):
        read_archive(io.BytesIO(stream.getvalue()), spool_dir=tmp_path / "nowhere")


def test_dash_reads_standard_input(local_db, tmp_path, monkeypatch):
    populate_awkward(local_db.db)
    stream = io.BytesIO()
    _export(local_db, stream)
    said = []
    with _feed(stream.getvalue()) as pipe:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(pipe))
        with read_archive("-", spool_dir=tmp_path, say=said.append) as archive:
            assert archive.label == "standard input" and sorted(archive.dump().collections) == sorted(AWKWARD)
    assert said[0].startswith("Reading standard input into a temporary file in ")


def _synthetic_archive(namespaces: dict) -> bytes:
    """An archive of ``{(db, collection): (type, documents)}``, the oplog's database "" included."""
    stream = io.BytesIO()
    writer = ArchiveWriter(stream, server_version="8.0.0", tool_version="100.8.0")
    writer.begin(
        [
            (db, name, {} if db == "" else {"options": {}, "indexes": [], "type": kind}, kind)
            for (db, name), (kind, _) in namespaces.items()
        ]
    )
    for (db, name), (_, documents) in namespaces.items():
        writer.write(db, name, b"".join(bson.encode(document) for document in documents))
        writer.end(db, name)
    writer.finish()
    return stream.getvalue()


def test_several_databases_need_a_choice_and_the_oplog_is_left_out_with_a_warning(tmp_path):
    path = tmp_path / "server.archive"
    path.write_bytes(
        _synthetic_archive(
            {
                ("app", "users"): ("collection", [{"_id": 1}, {"_id": 2}]),
                ("app", "active"): ("view", []),
                ("other", "things"): ("collection", [{"_id": "x"}]),
                ("", "oplog"): ("", [{"ts": bson.Timestamp(1, 1), "op": "n", "o": {}}]),
            }
        )
    )
    with read_archive(path) as archive:
        assert archive.databases == ["app", "other"] and archive.has_oplog
        with pytest.raises(ValueError, match=r"holds 2 databases \(app, other\): pick one with --source-db"):
            archive.dump()
        with pytest.raises(ValueError, match=r"holds no database 'nope' \(it holds: app, other\)"):
            archive.dump("nope")
        dump = archive.dump("app")
        assert list(dump.collections) == ["users"] and list(dump.views) == ["active"]
        assert [bson.decode(raw)["_id"] for raw in dump.collections["users"].documents()] == [1, 2]
        (warning,) = dump.warnings
        assert "oplog (mongodump --oplog)" in warning and "point-in-time replay is not supported" in warning


def test_a_time_series_is_checked_and_left_out_with_a_warning(tmp_path):
    """mongodump lists a time series X in the prelude and writes its documents under system.buckets.X."""
    bucket = bson.encode({"_id": 1, "control": {"version": 1}})

    def block(name, eof=False, crc=0):
        return bson.encode({"db": "app", "collection": name, "EOF": eof, "CRC": Int64(crc)})

    entry = {"db": "app", "collection": "ts", "metadata": '{"options": {"timeseries": {}}}', "size": 0}
    header = {"concurrent_collections": 1, "version": "0.1", "server_version": "7.0.0", "tool_version": "x"}
    path = tmp_path / "ts.archive"
    path.write_bytes(
        b"\x6d\xe2\x99\x81"
        + bson.encode(header)
        + bson.encode({**entry, "type": "timeseries"})
        + b"\xff\xff\xff\xff"
        + block("system.buckets.ts")
        + bucket
        + b"\xff\xff\xff\xff"
        + block("system.buckets.ts", eof=True, crc=signed64(crc64(bucket)))
        + b"\xff\xff\xff\xff"
    )
    with read_archive(path) as archive:
        assert archive.namespaces[("app", "system.buckets.ts")].documents_count == 1
        dump = archive.dump()
    assert dump.collections == {}
    assert dump.warnings == ["time-series and system collections not imported: system.buckets.ts, ts."]


def test_a_rollback_snapshot_of_a_non_empty_target_goes_beside_the_archive(local_db, atlas_db, tmp_path):
    populate_awkward(local_db.db)
    atlas_db.db["already_there"].insert_one({"_id": 1})
    path = tmp_path / "exports" / "a.archive"
    _export(local_db, path)
    with read_archive(path) as archive:
        dump = archive.dump()
        snapshot = default_snapshot_dir(dump, atlas_db.name)
        report = import_dump(
            atlas_db.client, dump, target_db=atlas_db.name, target_uri=atlas_db.uri, snapshot_dir=snapshot
        )
    assert snapshot.parent == path.parent and snapshot.name.startswith(f"a.archive-rollback-{atlas_db.name}-")
    assert report.snapshot.path == snapshot and (snapshot / atlas_db.name / "already_there.bson").exists()


# -- the real tools ------------------------------------------------------------------------------
def _restore(mongo_tools, path, source, target, *extra):
    mongo_tools.run(
        "mongorestore",
        f"--archive={path}",
        f"--nsFrom={source.name}.*",
        f"--nsTo={target.name}.*",
        *extra,
        uri=target.uri,
    )


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_mongorestore_restores_our_archive_byte_for_byte(
    local_db, other_local_db, tmp_path, mongo_tools, compress
):
    populate_awkward(local_db.db)
    path = tmp_path / "ours.archive"
    _export(local_db, path, compress=compress)
    _restore(mongo_tools, path, local_db, other_local_db, *(["--gzip"] if compress else []))
    _assert_same_database(local_db, other_local_db)


def test_mongorestore_restores_our_interleaved_archive(local_db, other_local_db, tmp_path, mongo_tools):
    populate_awkward(local_db.db)
    _interleaved_archive(local_db, tmp_path / "interleaved.archive")
    _restore(mongo_tools, tmp_path / "interleaved.archive", local_db, other_local_db)
    _assert_same_database(local_db, other_local_db)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_we_import_mongodumps_archive_byte_for_byte(local_db, atlas_db, tmp_path, mongo_tools, compress):
    populate_awkward(local_db.db)
    path = tmp_path / "mongodump.archive"
    mongo_tools.run(
        "mongodump",
        f"--db={local_db.name}",
        f"--archive={path}",
        *(["--gzip"] if compress else []),
        uri=local_db.uri,
    )
    dump, report = _import(path, atlas_db)
    assert dump.manifest is None and report.checksums_checked and report.conflicts == 0
    _assert_imported_from_mongodump(local_db, atlas_db, path)


@pytest.mark.slow
def test_seven_megabyte_documents_both_ways_with_the_real_tools(
    local_db, other_local_db, atlas_db, tmp_path, mongo_tools
):
    populate_awkward(local_db.db, big_documents=True)
    _export(local_db, tmp_path / "ours.archive")
    _restore(mongo_tools, tmp_path / "ours.archive", local_db, other_local_db)
    _assert_same_database(local_db, other_local_db)
    mongo_tools.run(
        "mongodump", f"--db={local_db.name}", f"--archive={tmp_path / 'theirs.archive'}", uri=local_db.uri
    )
    _import(tmp_path / "theirs.archive", atlas_db)
    _assert_imported_from_mongodump(local_db, atlas_db, tmp_path / "theirs.archive")


def test_mongodump_piped_into_our_reader(local_db, atlas_db, tmp_path, mongo_tools):
    populate_awkward(local_db.db)
    with mongo_tools.command(
        "mongodump", f"--db={local_db.name}", "--archive", "--gzip", uri=local_db.uri
    ) as cmd:
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as dumping:
            _, report = _import(dumping.stdout, atlas_db, spool_dir=tmp_path)
        assert dumping.returncode == 0
    assert report.conflicts == 0
    _assert_imported_from_mongodump(local_db, atlas_db)


def test_a_flipped_byte_in_mongodumps_archive_is_refused_before_any_write(
    local_db, atlas_db, tmp_path, mongo_tools
):
    populate_awkward(local_db.db)
    path = tmp_path / "mongodump.archive"
    mongo_tools.run("mongodump", f"--db={local_db.name}", f"--archive={path}", uri=local_db.uri)
    collection, segment = _segment(path, "validated")
    data = bytearray(path.read_bytes())
    _damage_document(data, collection, segment)
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedArchiveError, match=f"CRC-64 mismatch for {local_db.name}.validated"):
        _import(path, atlas_db)
    assert atlas_db.db.list_collection_names() == []


@pytest.mark.embedded_only("mongodump --oplog dumps the whole server, which a shared real one may not allow")
def test_mongodumps_oplog_archive_of_the_whole_server(local_db, atlas_db, tmp_path, mongo_tools):
    populate_awkward(local_db.db)
    path = tmp_path / "server.archive"
    mongo_tools.run("mongodump", "--oplog", f"--archive={path}", uri=local_db.uri)
    with read_archive(path) as archive:
        assert archive.has_oplog and local_db.name in archive.databases
        if len(archive.databases) > 1:
            with pytest.raises(ValueError, match="pick one with --source-db"):
                archive.dump()
    dump, report = _import(path, atlas_db, source_db=local_db.name)
    assert any("point-in-time replay is not supported" in warning for warning in dump.warnings)
    assert report.conflicts == 0
    _assert_imported_from_mongodump(local_db, atlas_db, path)
