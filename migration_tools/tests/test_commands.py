"""The three commands: exit codes, messages, redaction and the audit record."""

import json
from urllib.parse import unquote, urlsplit

import pytest
from django.test import override_settings

from migration_tools.models import MigrationRun
from migration_tools.runs import AUDIT_COLLECTION
from migration_tools.tests.conftest import run_command
from migration_tools.tests.factories import populate_awkward, populate_domain

FAKE_USERINFO = "u:" + "sekret"  # a made-up login; assembled so no URI literal carries one

pytestmark = pytest.mark.django_db


run = run_command


def _password(uri):
    return unquote(urlsplit(uri).password or "")


def test_export_import_verify_exit_zero_and_never_print_the_password(local_db, atlas_db, tmp_path):
    populate_awkward(local_db.db)
    populate_domain(local_db.db)
    dump_dir = tmp_path / "dump"
    outputs = [
        run("export_local", "--out", str(dump_dir), "--uri", local_db.uri, "--db", local_db.name),
        run("import_atlas", "--from", str(dump_dir), "--uri", atlas_db.uri, "--db", atlas_db.name),
        run(
            "verify_migration",
            "--source-uri",
            local_db.uri,
            "--db",
            local_db.name,
            "--target-uri",
            atlas_db.uri,
            "--target-db",
            atlas_db.name,
            "--json",
            str(tmp_path / "report.json"),
        ),
    ]
    assert [code for code, _, _ in outputs] == [0, 0, 0], outputs
    assert "Exported" in outputs[0][1] and "documents/s" in outputs[0][1]
    assert "every checksum and the BSON framing checked" in outputs[1][1]
    assert "RESULT: IDENTICAL" in outputs[2][1]
    assert json.loads((tmp_path / "report.json").read_text())["identical"] is True
    password = _password(atlas_db.uri)
    if password:
        for _, stdout, stderr in outputs:
            assert password not in stdout + stderr
    # Export records in the application's database, import and verify in the target's.
    runs = [MigrationRun.objects.get(), *_target_runs(atlas_db)]
    assert [(r.command, r.status, r.exit_code) for r in runs] == [
        ("export_local", "ok", 0),
        ("import_atlas", "ok", 0),
        ("verify_migration", "ok", 0),
    ]
    assert runs[0].counts["every.type"] == 1 and len(runs[0].checksums["every.type"]) == 64
    assert runs[1].database == atlas_db.name and runs[1].counts["every.type"]["inserted"] == 1
    if password:
        assert all(password not in r.target + r.source + r.message for r in runs)
    # Every command's first line names what it reads and writes.
    assert outputs[0][1].startswith(f"export_local: reads database {local_db.name} on ")
    assert outputs[1][1].startswith(f"import_atlas: reads the dump {dump_dir} (database {local_db.name}) ")
    assert outputs[2][1].startswith(f"verify_migration: reads database {local_db.name} on ")


def _target_runs(target):
    """The MigrationRun records in a target's database, oldest first, read as the admin reads them."""
    documents = target.db[AUDIT_COLLECTION].find({}, {"_id": 0}).sort("started_at", 1)
    return [MigrationRun(**document) for document in documents]


def test_import_without_a_target_cannot_run(tmp_path):
    with override_settings(ATLAS_MONGODB_URI=""):
        code, _, err = run("import_atlas", "--from", str(tmp_path))
    assert code == 2
    assert "ATLAS_MONGODB_URI" in err and "never falls back" in err


def test_import_into_the_local_source_itself_is_refused(local_db, tmp_path):
    local_db.db["items"].insert_one({"_id": 1})
    run("export_local", "--out", str(tmp_path / "d"), "--uri", local_db.uri, "--db", local_db.name)
    with override_settings(LOCAL_MONGODB_URI=local_db.uri, MONGODB_DB_NAME=local_db.name):
        code, _, err = run("import_atlas", "--from", str(tmp_path / "d"), "--uri", local_db.uri)
    assert code == 1 and "local source itself" in err


def test_drop_without_yes_is_refused(atlas_db, tmp_path):
    code, _, err = run("import_atlas", "--from", str(tmp_path), "--uri", atlas_db.uri, "--drop")
    assert code == 1 and "--yes" in err


def test_damaged_dump_is_refused_with_exit_one_naming_the_file(local_db, atlas_db, tmp_path):
    local_db.db["items"].insert_many([{"_id": n} for n in range(5)])
    run("export_local", "--out", str(tmp_path / "d"), "--uri", local_db.uri, "--db", local_db.name)
    path = tmp_path / "d" / local_db.name / "items.bson"
    path.write_bytes(path.read_bytes()[:-3])
    code, _, err = run(
        "import_atlas", "--from", str(tmp_path / "d"), "--uri", atlas_db.uri, "--db", atlas_db.name
    )
    assert code == 1 and "items.bson" in err and "nothing written" in err
    assert atlas_db.db.list_collection_names() == [AUDIT_COLLECTION]
    assert [(r.status, r.exit_code) for r in _target_runs(atlas_db)] == [("refused", 1)]


def test_conflicts_exit_one_and_dry_run_says_so(local_db, atlas_db, tmp_path):
    local_db.db["items"].insert_many([{"_id": n} for n in range(5)])
    run("export_local", "--out", str(tmp_path / "d"), "--uri", local_db.uri, "--db", local_db.name)
    atlas_db.db["items"].insert_one({"_id": 2, "changed": True})
    args = ("import_atlas", "--from", str(tmp_path / "d"), "--uri", atlas_db.uri, "--db", atlas_db.name)
    code, out, err = run(*args, "--dry-run")
    assert code == 1 and "DRY RUN, nothing written" in out and "CONFLICTS 1 (first _ids: 2)" in out
    assert atlas_db.db["items"].count_documents({}) == 1
    code, out, err = run(*args, "--no-snapshot")
    assert code == 1 and "1 conflict" in err
    assert atlas_db.db["items"].find_one({"_id": 2}) == {"_id": 2, "changed": True}
    code, out, err = run(*args, "--drop", "--yes", "--snapshot-dir", str(tmp_path / "snap"))
    assert code == 0, err
    assert (tmp_path / "snap" / "manifest.json").exists()


def test_mongodump_folder_imports_with_a_warning(local_db, atlas_db, tmp_path):
    local_db.db["items"].insert_many([{"_id": n} for n in range(5)])
    run("export_local", "--out", str(tmp_path / "d"), "--uri", local_db.uri, "--db", local_db.name)
    (tmp_path / "d" / "manifest.json").unlink()
    code, out, err = run(
        "import_atlas", "--from", str(tmp_path / "d"), "--uri", atlas_db.uri, "--db", atlas_db.name
    )
    assert code == 0, err
    assert "no checksum could be checked" in err


def test_verify_differences_exit_one_with_a_table(local_db, atlas_db, tmp_path):
    local_db.db["items"].insert_many([{"_id": n} for n in range(5)])
    run("export_local", "--out", str(tmp_path / "d"), "--uri", local_db.uri, "--db", local_db.name)
    run("import_atlas", "--from", str(tmp_path / "d"), "--uri", atlas_db.uri, "--db", atlas_db.name)
    atlas_db.db["items"].delete_one({"_id": 4})
    args = ("--target-uri", atlas_db.uri, "--target-db", atlas_db.name)
    code, out, err = run("verify_migration", "--source-uri", local_db.uri, "--db", local_db.name, *args)
    assert code == 1 and "DIFFERENCES FOUND" in out and "missing in the target, first _ids: 4" in out
    code, out, err = run("verify_migration", "--dump", str(tmp_path / "d"), *args)
    assert code == 1 and "missing in the target, first _ids: 4" in out
    assert [(r.command, r.status) for r in _target_runs(atlas_db)][-2:] == [
        ("verify_migration", "refused")
    ] * 2


def test_export_warns_about_domain_problems_and_refuses_a_used_folder(local_db, tmp_path):
    user_ids = populate_domain(local_db.db)
    local_db.db["accounts_user"].update_one({"_id": user_ids[0]}, {"$inc": {"points": 1}})
    local_db.db["sessions_app_studysession"].insert_one({"user_id": "gone", "subject": "x"})
    args = ("export_local", "--out", str(tmp_path / "d"), "--uri", local_db.uri, "--db", local_db.name)
    code, _, err = run(*args)
    assert code == 0
    assert "1 document(s) whose user does not exist" in err
    assert "1 user(s) whose points differ" in err
    code, _, err = run(*args)
    assert code == 1 and "already holds a dump" in err


def test_export_of_a_database_that_does_not_exist_or_is_empty_is_refused(local_db, tmp_path):
    args = ("export_local", "--out", str(tmp_path / "d"), "--uri", local_db.uri, "--db", local_db.name)
    code, _, err = run(*args)
    assert code == 1 and "does not exist: nothing to export" in err
    # Empty collections, and the tools' own, are no data to export (issue 11, item 3).
    local_db.db.create_collection("items")
    local_db.db[AUDIT_COLLECTION].insert_one({"command": "export_local"})
    code, _, err = run(*args)
    assert code == 1 and "holds no documents: nothing to export" in err
    assert not (tmp_path / "d").exists()


@pytest.mark.embedded_only("needs the embedded server's user and a closed port")
def test_wrong_credentials_cannot_run_and_name_authentication(local_db, atlas_server, tmp_path):
    from conftest import ATLAS_APP
    from studymaster.embedded import MongoUser

    local_db.db["items"].insert_one({"_id": 1})
    run("export_local", "--out", str(tmp_path / "d"), "--uri", local_db.uri, "--db", local_db.name)
    wrong = atlas_server.uri(MongoUser(ATLAS_APP.username, "not-the-password-0451"))
    for args in (
        ("import_atlas", "--from", str(tmp_path / "d"), "--uri", wrong),
        ("verify_migration", "--dump", str(tmp_path / "d"), "--target-uri", wrong),
    ):
        code, out, err = run(*args)
        assert code == 2, err
        assert "authentication failed" in err.lower()
        assert "not-the-password-0451" not in out + err


@pytest.mark.embedded_only("needs a port nobody listens on")
def test_unreachable_server_cannot_run(tmp_path):
    from studymaster.embedded import free_port

    with override_settings(MONGODB_SERVER_SELECTION_TIMEOUT_MS=300):
        code, _, err = run(
            "export_local",
            "--out",
            str(tmp_path / "d"),
            "--uri",
            f"mongodb://{FAKE_USERINFO}@127.0.0.1:{free_port()}/",
        )
    assert code == 2 and "unreachable" in err and "sekret" not in err


def test_quota_reply_is_classified_as_quota_with_exit_two():
    from pymongo.errors import OperationFailure

    from studymaster.errors import command_error

    reply = {"ok": 0, "errmsg": "you are over your space quota, using 513 MB of 512 MB", "code": 8000}
    error = command_error(OperationFailure(reply["errmsg"], reply["code"], reply))
    assert error.returncode == 2 and str(error).startswith("quota:")


@pytest.mark.embedded_only("uses a failCommand failpoint")
def test_a_write_failure_midway_cannot_run_and_the_rerun_completes(local_db, atlas_db, tmp_path):
    local_db.db["items"].insert_many([{"_id": n} for n in range(50)])
    run("export_local", "--out", str(tmp_path / "d"), "--uri", local_db.uri, "--db", local_db.name)
    target = local_db.client["test_quota_target"]
    local_db.client.drop_database("test_quota_target")
    # The first insert is the audit record's: a warning with its reason, never a failure.
    local_db.client.admin.command(
        "configureFailPoint",
        "failCommand",
        mode={"times": 2},
        data={"failCommands": ["insert"], "errorCode": 8000},
    )
    try:
        args = (
            "import_atlas",
            "--from",
            str(tmp_path / "d"),
            "--uri",
            local_db.uri,
            "--db",
            "test_quota_target",
        )
        code, _, err = run(*args)
        assert code == 2, err
        assert (
            "warning: the audit record (MigrationRun) in database test_quota_target of the target was not "
            "written: atlas: Atlas refused the operation (AtlasError 8000" in err
        )
        code, out, err = run(*args, "--no-snapshot")
        assert code == 0, err
        assert target["items"].count_documents({}) == 50
    finally:
        local_db.client.admin.command("configureFailPoint", "failCommand", mode="off")
        local_db.client.drop_database("test_quota_target")


def test_export_selected_collections_gzip_and_restore_a_rollback_snapshot(local_db, atlas_db, tmp_path):
    for name in ("a", "b", "c"):
        local_db.db[name].insert_many([{"_id": n, "in": name} for n in range(3)])
    dump_dir = tmp_path / "d"
    code, _, err = run(
        "export_local", "--out", str(dump_dir), "--uri", local_db.uri, "--db", local_db.name,
        "--collection", "a", "--collection", "c", "--gzip",
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in (dump_dir / local_db.name).iterdir()) == [
        "a.bson.gz",
        "a.metadata.json.gz",
        "c.bson.gz",
        "c.metadata.json.gz",
    ]
    # The target already holds a "before" state: the import snapshots it first.
    atlas_db.db["a"].insert_one({"_id": 99, "before": True})
    snapshot = tmp_path / "snap"
    args = ("--uri", atlas_db.uri, "--db", atlas_db.name)
    code, out, err = run("import_atlas", "--from", str(dump_dir), *args, "--snapshot-dir", str(snapshot))
    assert code == 0, err
    assert f"Rollback snapshot of the target written to {snapshot}" in out
    assert atlas_db.db["a"].count_documents({}) == 4
    # Rolling back: the snapshot, imported with --drop --yes, is the state before the import.
    code, out, err = run("import_atlas", "--from", str(snapshot), *args, "--drop", "--yes", "--no-snapshot")
    assert code == 0, err
    assert list(atlas_db.db["a"].find()) == [{"_id": 99, "before": True}]
    code, out, err = run(
        "verify_migration",
        "--dump",
        str(snapshot),
        "--target-uri",
        atlas_db.uri,
        "--target-db",
        atlas_db.name,
    )
    assert "collection not in the source" in out  # "c" came with the import, not with the snapshot


def test_a_malformed_uri_cannot_run_and_names_the_option(tmp_path):
    code, _, err = run("export_local", "--out", str(tmp_path / "d"), "--uri", "http://user:pw@example.com")
    assert code == 2 and "--uri" in err and "pw@" not in err
    code, _, err = run("verify_migration", "--dump", str(tmp_path), "--target-uri", "mongodb+srv://h:27017/")
    assert code == 2 and "--target-uri" in err


def test_import_with_a_malformed_uri_cannot_run(local_db, tmp_path):
    local_db.db["items"].insert_one({"_id": 1})
    run("export_local", "--out", str(tmp_path / "d"), "--uri", local_db.uri, "--db", local_db.name)
    code, _, err = run(
        "import_atlas", "--from", str(tmp_path / "d"), "--uri", f"mongodb://{FAKE_USERINFO}@h:99999/"
    )
    assert code == 2 and "--uri" in err and "port" in err
