"""The archive through the commands: export_local --archive, import_atlas --archive/--from, verify --dump."""

import datetime
import io
import os
import stat
import subprocess
import sys
import threading

import bson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from migration_tools.archive import ArchiveWriter, manifest_path_for
from migration_tools.tests.conftest import run_command
from migration_tools.tests.factories import populate_awkward
from studymaster.tools_collections import is_data_collection

pytestmark = pytest.mark.django_db


def run(*args, stdin: bytes | None = None, monkeypatch=None):
    """(exit code, stdout as bytes, stderr) of a command; ``stdin`` is fed through a real pipe."""
    if stdin is not None:
        read_fd, write_fd = os.pipe()

        def pump():
            with os.fdopen(write_fd, "wb") as stream:
                stream.write(stdin)

        threading.Thread(target=pump, daemon=True).start()
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(os.fdopen(read_fd, "rb")))
    return run_command(*args, binary=True)


def _export(source, *args):
    return run("export_local", "--uri", source.uri, "--db", source.name, *args)


def _import(target, *args, **kwargs):
    return run("import_atlas", "--uri", target.uri, "--db", target.name, "--no-snapshot", *args, **kwargs)


def _verify(target, *args, **kwargs):
    return run("verify_migration", "--target-uri", target.uri, "--target-db", target.name, *args, **kwargs)


@pytest.mark.parametrize("gzip", [[], ["--gzip"]], ids=["plain", "gzip"])
def test_archive_file_through_the_three_commands(local_db, atlas_db, tmp_path, gzip):
    populate_awkward(local_db.db)
    path = tmp_path / "studymaster.archive"
    code, out, _ = _export(local_db, "--archive", str(path), *gzip)
    assert code == 0 and manifest_path_for(path).exists()
    assert f"to {path} (mongodump archive){', gzipped' if gzip else ''} in " in out.decode()
    assert f"Re-read: its SHA-256 matches {path}.manifest.json." in out.decode()
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if gzip else b"\x6d\xe2")
    code, out, err = _import(atlas_db, "--archive", str(path), *gzip)  # --gzip: mongorestore's spelling
    assert (code, err) == (0, "") and "every checksum and the BSON framing checked" in out.decode()
    code, out, _ = _verify(atlas_db, "--dump", str(path))
    assert code == 0 and "RESULT: IDENTICAL" in out.decode()


def test_from_a_file_reads_it_as_an_archive(local_db, atlas_db, tmp_path):
    populate_awkward(local_db.db)
    _export(local_db, "--archive", str(tmp_path / "a.archive"))
    code, out, _ = _import(atlas_db, "--from", str(tmp_path / "a.archive"), "--max-ops-per-second", "500")
    assert code == 0 and " inserted " in out.decode()
    assert atlas_db.db["validated"].count_documents({}) == 5


def test_a_pipe_from_export_to_import_and_verify(local_db, atlas_db, tmp_path, monkeypatch):
    populate_awkward(local_db.db)
    monkeypatch.chdir(tmp_path)
    code, archive, err = _export(local_db, "--archive")  # bare --archive: standard output
    assert code == 0 and archive[:4] == b"\x6d\xe2\x99\x81"
    assert "to standard output (mongodump archive)" in err and "no manifest beside a pipe" in err
    assert list(tmp_path.iterdir()) == []
    spool = tmp_path / "spool"
    spool.mkdir()
    code, out, _ = _import(
        atlas_db, "--archive", "-", "--spool-dir", str(spool), stdin=archive, monkeypatch=monkeypatch
    )
    assert code == 0
    assert out.decode().startswith(
        f"Reading standard input into a temporary file in {spool}, to check the whole archive before anything"
    )
    code, out, _ = _verify(atlas_db, "--dump", "-", stdin=archive, monkeypatch=monkeypatch)
    assert code == 0 and "source: standard input" in out.decode() and "RESULT: IDENTICAL" in out.decode()


def test_exactly_one_destination_and_one_source_else_exit_two(local_db, atlas_db, tmp_path):
    for args in ([], ["--out", str(tmp_path / "d"), "--archive", str(tmp_path / "a")]):
        code, _, err = _export(local_db, *args)
        assert code == 2 and "exactly one of --out DIR and --archive [PATH|-]" in err
    for args in ([], ["--from", str(tmp_path), "--archive", str(tmp_path / "a")]):
        code, _, err = _import(atlas_db, *args)
        assert code == 2 and "exactly one of --from PATH and --archive [PATH|-]" in err
    assert list(tmp_path.iterdir()) == []


def test_an_archive_to_a_terminal_is_refused(local_db):
    leader, follower = os.openpty()
    try:
        with open(follower, "wb", closefd=False) as terminal:
            err = io.StringIO()
            with pytest.raises(CommandError) as refused:
                call_command(
                    "export_local", "--uri", local_db.uri, "--db", local_db.name, "--archive",
                    stdout=io.TextIOWrapper(terminal), stderr=err,
                )  # fmt: skip
    finally:
        os.close(leader)
        os.close(follower)
    assert refused.value.returncode == 2 and "Standard output is a terminal" in str(refused.value)


def test_an_existing_archive_file_is_refused(local_db, tmp_path):
    local_db.db["items"].insert_one({"_id": 1})
    (tmp_path / "a.archive").write_bytes(b"keep")
    code, _, err = _export(local_db, "--archive", str(tmp_path / "a.archive"))
    assert code == 1 and "already exists" in err and (tmp_path / "a.archive").read_bytes() == b"keep"


def test_a_damaged_archive_is_refused_by_import_and_verify(local_db, atlas_db, tmp_path):
    populate_awkward(local_db.db)
    path = tmp_path / "a.archive"
    _export(local_db, "--archive", str(path))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    code, _, err = _import(atlas_db, "--archive", str(path))
    assert code == 1 and err.startswith(f"Refused, nothing written: {path}: ")
    assert atlas_db.db.list_collection_names() == []
    atlas_db.db["items"].insert_one({"_id": 1})  # verify says of an empty target first
    code, _, err = _verify(atlas_db, "--dump", str(path))
    assert code == 1 and err.startswith(f"Refused: {path}: ")


@pytest.mark.parametrize("form", ["folder", "archive"])
def test_collection_imports_only_those(local_db, atlas_db, tmp_path, form):
    populate_awkward(local_db.db)
    where = ["--out", str(tmp_path / "d")] if form == "folder" else ["--archive", str(tmp_path / "d.archive")]
    _export(local_db, *where)
    source = ["--from", where[1]]
    code, _, _ = _import(atlas_db, *source, "--collection", "indexed", "--collection", "indexed_positive")
    imported = sorted(name for name in atlas_db.db.list_collection_names() if is_data_collection(name))
    assert code == 0 and imported == ["indexed", "indexed_positive"]
    code, _, err = _import(atlas_db, *source, "--collection", "nope")
    assert code == 1 and "holds no collection named nope (it holds: empty, " in err


ID_INDEX = {"v": 2, "key": {"_id": 1}, "name": "_id_"}


def _several_databases(path) -> None:
    stream = io.BytesIO()
    writer = ArchiveWriter(stream, server_version="8.0.0", tool_version="100.8.0")
    namespaces = {("app", "users"): [{"_id": 1}], ("other", "things"): [{"_id": 2}], ("", "oplog"): []}
    writer.begin(
        [
            (db, name, {} if db == "" else {"options": {}, "indexes": [ID_INDEX]}, "collection")
            for db, name in namespaces
        ]
    )
    for (db, name), documents in namespaces.items():
        writer.write(db, name, b"".join(bson.encode(d) for d in documents))
        writer.end(db, name)
    path.write_bytes(stream.getvalue())


def test_several_databases_need_source_db_and_the_oplog_is_left_out_with_a_warning(atlas_db, tmp_path):
    path = tmp_path / "server.archive"
    _several_databases(path)
    code, _, err = _import(atlas_db, "--archive", str(path))
    assert code == 1 and "holds 2 databases (app, other): pick one with --source-db" in err
    code, _, err = _import(atlas_db, "--archive", str(path), "--source-db", "other")
    assert code == 0 and list(atlas_db.db["things"].find()) == [{"_id": 2}]
    assert err == (
        f"warning: {path} holds an oplog (mongodump --oplog): it is imported without it; "
        "point-in-time replay is not supported.\n"
    )
    code, out, _ = _verify(atlas_db, "--dump", str(path), "--source-db", "other")
    assert code == 0 and "RESULT: IDENTICAL" in out.decode()


def test_a_spool_dir_that_does_not_exist_cannot_run(local_db, atlas_db, tmp_path, monkeypatch):
    local_db.db["items"].insert_one({"_id": 1})
    _, archive, _ = _export(local_db, "--archive", "-")
    code, _, err = _import(
        atlas_db,
        "--archive",
        "--spool-dir",
        str(tmp_path / "nowhere"),
        stdin=archive,
        monkeypatch=monkeypatch,
    )
    assert code == 2 and "no such folder for the temporary copy" in err
    assert atlas_db.db.list_collection_names() == []


def test_mongodump_archive_piped_into_import_atlas(local_db, atlas_db, tmp_path, mongo_tools, monkeypatch):
    populate_awkward(local_db.db)
    with (
        mongo_tools.command(
            "mongodump", f"--db={local_db.name}", "--archive", "--gzip", uri=local_db.uri
        ) as cmd,
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as dumping,
    ):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(dumping.stdout))
        code, out, err = _import(atlas_db, "--archive", "--gzip", "--spool-dir", str(tmp_path))
    assert (code, dumping.returncode, err) == (0, 0, "")
    assert out.decode().startswith(f"Reading standard input into a temporary file in {tmp_path}")
    code, out, _ = run(
        "verify_migration", "--source-uri", local_db.uri, "--db", local_db.name,
        "--target-uri", atlas_db.uri, "--target-db", atlas_db.name,
    )  # fmt: skip
    assert code == 0 and "RESULT: IDENTICAL" in out.decode()


def test_an_archive_gets_a_folders_safety(local_db, atlas_db, tmp_path):
    """Owner-only files, the tools' own collections left out both ways, and a dump's TTL in --dump mode."""
    old = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    now = datetime.datetime.now(datetime.UTC)
    local_db.db["tokens"].insert_many([{"_id": 1, "at": old}, {"_id": 2, "at": old}, {"_id": 3, "at": now}])
    local_db.db["tokens"].create_index("at", expireAfterSeconds=60, name="at_ttl")
    local_db.db["migration_tools_migrationrun"].insert_one({"_id": 1})
    path = tmp_path / "a.archive"
    code, out, _ = _export(local_db, "--archive", str(path))
    assert code == 0 and "migration_tools_migrationrun" in out.decode()  # named as never exported
    assert {stat.S_IMODE(p.stat().st_mode) for p in (path, manifest_path_for(path))} == {0o600}
    assert not path.with_name(path.name + ".partial").exists()
    # mongodump takes the tools' collections too: the import leaves them out and says so.
    stream = io.BytesIO()
    writer = ArchiveWriter(stream, server_version="8.0.0", tool_version="100.8.0")
    namespaces = {"items": [{"_id": 1}], "migration_tools_migrationrun": [{"_id": 7}]}
    writer.begin([("app", name, {"options": {}, "indexes": [ID_INDEX]}, "collection") for name in namespaces])
    for name, documents in namespaces.items():
        writer.write("app", name, b"".join(bson.encode(d) for d in documents))
        writer.end("app", name)
    mongodumped = tmp_path / "md.archive"
    mongodumped.write_bytes(stream.getvalue())
    code, out, _ = _import(atlas_db, "--archive", str(mongodumped))
    assert code == 0 and "Not imported: migration_tools_migrationrun" in out.decode()
    assert atlas_db.db["migration_tools_migrationrun"].find_one({"_id": 7}) is None
    # The target's TTL monitor removed what had expired: --dump knows the TTL from the archive.
    code, _, _ = _import(atlas_db, "--archive", str(path))
    atlas_db.db["tokens"].delete_many({"_id": {"$in": [1, 2]}})
    atlas_db.db["items"].drop()
    code, out, err = _verify(atlas_db, "--dump", str(path))
    assert code == 0, err
    assert "tokens: expired by TTL on either side (not a difference), first _ids: 1, 2" in out.decode()
