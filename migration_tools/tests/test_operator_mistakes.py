"""Issue 11: what a first run of the runbook found, each mistake replayed through the commands.

The dangerous ones (items 1-5) run against the Atlas-like fixture: TLS, SCRAM, and an app user
with readWrite on named databases only.
"""

import datetime
import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.test import override_settings

from accounts.models import User
from accounts.tests.factories import client_for, user_create
from migration_tools.models import MigrationRun
from migration_tools.runs import AUDIT_COLLECTION
from migration_tools.tests.conftest import compare, run_command
from migration_tools.tests.factories import populate_domain
from sessions_app.tests.factories import log_session
from tests.fault_injection import django_database_at

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def _target_records(target) -> list[tuple[str, str, int]]:
    return [
        (doc["command"], doc["status"], doc["exit_code"])
        for doc in target.db[AUDIT_COLLECTION].find().sort("started_at", 1)
    ]


# -- 1. stale rollback advice after the cut-over ------------------------------------------------


def test_a_rerun_after_the_cut_over_never_advises_dropping_what_users_wrote(
    atlas_db, tmp_path, midweek_clock
):
    user = user_create()
    log_session(user, ago=datetime.timedelta(hours=3))
    dump = tmp_path / "final"
    source = (connection.settings_dict["HOST"], connection.settings_dict["NAME"])
    code, _, err = run_command("export_local", "--out", str(dump), "--uri", source[0], "--db", source[1])
    assert code == 0, err
    args = ("import_atlas", "--from", str(dump), "--uri", atlas_db.uri, "--db", atlas_db.name)
    code, out, err = run_command(*args)
    assert code == 0, err
    assert "The target held no data before this import: rolling back means dropping" in out

    # Cut-over: the application now runs on the target, and a learner logs a study session.
    with django_database_at(atlas_db.uri, name=atlas_db.name):
        client, _ = client_for(User.objects.get(pk=user.pk))
        response = client.post(
            "/api/sessions/", {"subject": "Algebra", "duration_minutes": 25}, format="json"
        )
        assert response.status_code == 201, response.content
    session_id = response.json()["id"]

    # The same import, run again.
    code, out, err = run_command(*args)
    assert "dropping the collections" not in out
    snapshot_line = next(line for line in out.splitlines() if line.startswith("Rollback snapshot"))
    assert ": the earlier run's empty-target marker in " in snapshot_line
    # Named: the first collection (by name) that the session's writes reached, one document more.
    assert re.search(
        r"no longer stands \(\w+ holds \d+ documents, more than the \d+ the dump holds\)$", snapshot_line
    )
    # The fresh snapshot holds the learner's session; the import overwrote none of their writes.
    snapshot = Path(snapshot_line.split("written to ")[1].split(": ")[0])
    code_verify, report, _ = run_command(
        "verify_migration",
        "--dump",
        str(snapshot),
        "--target-uri",
        atlas_db.uri,
        "--target-db",
        atlas_db.name,
    )
    assert code_verify == 0, report
    assert atlas_db.db["sessions_app_studysession"].count_documents({}) == 2
    assert code == 1 and "CONFLICTS" in out  # the learner's new points: reported, never overwritten
    assert session_id


# -- 2. TTL documents (also migration_tools/tests/test_verify.py) ---------------------------------


def test_throttle_counters_that_expired_on_the_source_do_not_fail_a_correct_cut_over(
    local_db, atlas_db, tmp_path
):
    local_db.db["items"].insert_one({"_id": 1})
    expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=2)
    local_db.db["accounts_throttlecounter"].insert_many(
        [{"_id": n, "key": f"login:{n}", "count": 1, "expires_at": expires} for n in (1, 2)]
    )
    local_db.db["accounts_throttlecounter"].create_index("expires_at", expireAfterSeconds=0, name="ttl")
    run_command("export_local", "--out", str(tmp_path / "d"), "--uri", local_db.uri, "--db", local_db.name)
    run_command("import_atlas", "--from", str(tmp_path / "d"), "--uri", atlas_db.uri, "--db", atlas_db.name)
    local_db.db["accounts_throttlecounter"].delete_many({})  # the source's TTL monitor
    while datetime.datetime.now(datetime.UTC) <= expires:
        pass  # a short wait for the documents' TTL to pass
    code, out, _ = run_command(
        "verify_migration", "--source-uri", local_db.uri, "--db", local_db.name,
        "--target-uri", atlas_db.uri, "--target-db", atlas_db.name,
    )  # fmt: skip
    assert code == 0, out
    assert "RESULT: IDENTICAL" in out and "expired by TTL on either side (not a difference)" in out


# -- 3. export must be told its source -------------------------------------------------------------


def test_export_never_falls_back_to_the_applications_database(atlas_db, tmp_path):
    with override_settings(LOCAL_MONGODB_URI="", MONGODB_URI=atlas_db.uri, MONGODB_DB_NAME=atlas_db.name):
        code, out, err = run_command("export_local", "--out", str(tmp_path / "d"))
    assert code == 2
    assert (
        "No source: set LOCAL_MONGODB_URI or pass --uri. export_local never falls back to MONGODB_URI." in err
    )
    assert atlas_db.db.list_collection_names() == [] and not (tmp_path / "d").exists()


def test_exporting_an_empty_database_is_refused_and_leaves_no_folder(atlas_db, tmp_path):
    atlas_db.db[AUDIT_COLLECTION].insert_one({"command": "export_local"})  # the tools' own: not data
    code, _, err = run_command(
        "export_local", "--out", str(tmp_path / "d"), "--uri", atlas_db.uri, "--db", atlas_db.name
    )
    assert code == 1 and "holds no documents: nothing to export" in err
    assert not (tmp_path / "d").exists()
    assert MigrationRun.objects.get().status == "refused"


# -- 4. verify with the same database on both sides --------------------------------------------------


@pytest.mark.parametrize("spelling", ["localhost", "[::1]", "127.0.0.1"])
def test_verify_refuses_the_same_database_on_both_sides_however_it_is_spelled(atlas_db, spelling):
    same = atlas_db.uri.replace("127.0.0.1", spelling) + "&directConnection=true"
    with override_settings(
        LOCAL_MONGODB_URI=same, ATLAS_MONGODB_URI=atlas_db.uri, MONGODB_DB_NAME=atlas_db.name
    ):
        code, out, err = run_command("verify_migration")
    assert code == 1
    assert err.startswith(f"The source and the target are the same database (database {atlas_db.name} on ")
    assert "RESULT" not in out


def test_verify_without_a_source_named_cannot_run(atlas_db):
    with override_settings(LOCAL_MONGODB_URI="", MONGODB_URI=atlas_db.uri, ATLAS_MONGODB_URI=atlas_db.uri):
        code, _, err = run_command("verify_migration")
    assert code == 2 and "No source: set LOCAL_MONGODB_URI or pass --source-uri" in err


# -- 5. the tools' own collections (also test_snapshots.py, test_restore.py, test_verify.py) ----------


def test_export_never_carries_the_tools_own_collections(atlas_db, tmp_path):
    atlas_db.db["items"].insert_one({"_id": 1})
    atlas_db.db[AUDIT_COLLECTION].insert_one({"command": "import_atlas"})
    atlas_db.db["migration_tools_maintenance"].insert_one({"_id": "maintenance", "level": "on"})
    code, out, err = run_command(
        "export_local", "--out", str(tmp_path / "d"), "--uri", atlas_db.uri, "--db", atlas_db.name, "-v", "2"
    )
    assert code == 0, err
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert list(manifest["collections"]) == ["items"]
    assert sorted(p.name for p in (tmp_path / "d" / atlas_db.name).iterdir()) == [
        "items.bson",
        "items.metadata.json",
    ]
    assert (
        "Never exported: the migration tools' own collections (migration_tools_*): migration_tools_maintenance, "
        "migration_tools_migrationrun." in out
    )
    code, _, err = run_command(
        "export_local", "--out", str(tmp_path / "e"), "--uri", atlas_db.uri, "--db", atlas_db.name,
        "--collection", AUDIT_COLLECTION,
    )  # fmt: skip
    assert code == 1 and "are never exported" in err


# -- 7. clean errors -------------------------------------------------------------------------------


def _fill_the_disk_after(monkeypatch, allowed_bytes: int):
    """Make every dump file write fail with ENOSPC once ``allowed_bytes`` were written in all."""
    import migration_tools.dump as dump_module

    real_write, written = dump_module.HashingWriter.write, [0]

    def write(self, data):
        written[0] += len(data)
        if written[0] > allowed_bytes:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        return real_write(self, data)

    monkeypatch.setattr(dump_module.HashingWriter, "write", write)


def test_a_full_disk_during_export_is_exit_2_naming_the_path_and_the_space_needed(
    local_db, tmp_path, monkeypatch
):
    populate_domain(local_db.db, users=20)
    _fill_the_disk_after(monkeypatch, 2000)
    out = tmp_path / "dump"
    code, _, err = run_command(
        "export_local", "--out", str(out), "--uri", local_db.uri, "--db", local_db.name
    )
    assert code == 2
    assert err.startswith(f"disk full: no space left on the device of {out} (writing ")
    assert "needs about " in err and " were free when it started" in err and "(less with --gzip)" in err
    assert not out.exists() and not out.with_name("dump.partial").exists()  # nothing like a dump left
    record = MigrationRun.objects.get()
    assert (record.status, record.exit_code) == ("failed", 2) and record.message.startswith("disk full:")
    monkeypatch.undo()
    code, _, err = run_command(
        "export_local", "--out", str(out), "--uri", local_db.uri, "--db", local_db.name
    )
    assert code == 0, err


def test_a_full_disk_during_the_rollback_snapshot_is_exit_2_and_nothing_is_written(
    local_db, atlas_db, tmp_path, monkeypatch
):
    local_db.db["items"].insert_many([{"_id": n} for n in range(10)])
    run_command("export_local", "--out", str(tmp_path / "d"), "--uri", local_db.uri, "--db", local_db.name)
    populate_domain(atlas_db.db, users=20)  # a target with data: it gets a snapshot
    _fill_the_disk_after(monkeypatch, 1000)
    snapshot = tmp_path / "snap"
    code, _, err = run_command(
        "import_atlas", "--from", str(tmp_path / "d"), "--uri", atlas_db.uri, "--db", atlas_db.name,
        "--snapshot-dir", str(snapshot),
    )  # fmt: skip
    assert code == 2 and err.startswith(
        f"disk full: the rollback snapshot: no space left on the device of {snapshot}"
    )
    assert "items" not in atlas_db.db.list_collection_names() and not snapshot.exists()
    assert _target_records(atlas_db) == [("import_atlas", "failed", 2)]


def test_ctrl_c_during_an_export_is_exit_130_recorded_as_interrupted_and_leaves_nothing(
    local_db, tmp_path, monkeypatch
):
    import migration_tools.dump as dump_module

    populate_domain(local_db.db)

    def interrupt(self, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(dump_module.HashingWriter, "write", interrupt)
    out = tmp_path / "dump"
    code, _, err = run_command(
        "export_local", "--out", str(out), "--uri", local_db.uri, "--db", local_db.name
    )
    assert (code, err) == (
        130,
        "interrupted; nothing was kept in the --out folder; run the same command again",
    )
    assert not out.exists() and not out.with_name("dump.partial").exists()
    record = MigrationRun.objects.get()
    assert (record.status, record.exit_code) == ("interrupted", 130)


@pytest.mark.slow
def test_an_export_that_crashed_leaves_no_dump_and_the_rerun_just_works(local_db, tmp_path):
    """Issue 11, item 11: SIGKILL halfway; the folder is complete or absent."""
    populate_domain(local_db.db, users=30)
    out = tmp_path / "dump"
    crash = (
        "import django, os, signal; django.setup()\n"
        "import migration_tools.dump as d\n"
        "real = d.HashingWriter.write\n"
        "def write(self, data):\n"
        "    if self.path.name.endswith('.bson'): os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return real(self, data)\n"
        "d.HashingWriter.write = write\n"
        "from django.core.management import call_command\n"
        f"call_command('export_local', '--out', {str(out)!r}, '--uri', {local_db.uri!r}, '--db', {local_db.name!r})\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "studymaster.settings.test"}
    crashed = subprocess.run(
        [sys.executable, "-c", crash], cwd=ROOT, env=env, capture_output=True, timeout=60
    )
    assert crashed.returncode == -9
    assert not out.exists() and out.with_name("dump.partial").exists()
    code, _, err = run_command(
        "export_local", "--out", str(out), "--uri", local_db.uri, "--db", local_db.name
    )
    assert code == 0, err
    assert (out / "manifest.json").exists() and not out.with_name("dump.partial").exists()
    code, _, err = run_command(
        "import_atlas", "--from", str(out.with_name("dump.partial")), "--uri", local_db.uri
    )
    assert code == 1 and "no such folder" in err


# -- 8, 9. rights and names -----------------------------------------------------------------------


def test_a_typo_in_the_target_database_names_it_for_a_read_write_user(local_db, atlas_db, tmp_path):
    local_db.db["items"].insert_one({"_id": 1})
    code, _, err = run_command(
        "verify_migration", "--source-uri", local_db.uri, "--db", local_db.name,
        "--target-uri", atlas_db.uri, "--target-db", "studymastr",
    )  # fmt: skip
    assert code == 2
    assert err.startswith("authorization: The database user has no right on database 'studymastr'")
    assert "correct the database name" in err and len(err.splitlines()) == 1


@pytest.mark.embedded_only("needs the embedded server's admin user")
def test_a_typo_in_the_target_database_says_it_does_not_exist_for_an_admin(local_db, atlas_server):
    from conftest import ATLAS_ADMIN

    local_db.db["items"].insert_one({"_id": 1})
    code, out, err = run_command(
        "verify_migration", "--source-uri", local_db.uri, "--db", local_db.name,
        "--target-uri", atlas_server.uri(ATLAS_ADMIN), "--target-db", "studymastr",
    )  # fmt: skip
    assert code == 1
    assert (
        err.startswith("The target database 'studymastr' on ") and "does not exist: nothing to compare" in err
    )
    assert "options" not in out  # no table of DIFFs


# -- 12. owner-only dumps, and git never sees the runbook's folders ------------------------------------


def test_dumps_and_reports_are_owner_only(local_db, atlas_db, tmp_path):
    populate_domain(local_db.db)
    out = tmp_path / "backups" / "daily" / "dump"
    run_command("export_local", "--out", str(out), "--uri", local_db.uri, "--db", local_db.name, "--gzip")
    assert (tmp_path / "backups").stat().st_mode & 0o777 == 0o700  # folders it had to create too
    run_command("import_atlas", "--from", str(out), "--uri", atlas_db.uri, "--db", atlas_db.name)
    report = tmp_path / "verify-final.json"
    run_command("verify_migration", "--dump", str(out), "--target-uri", atlas_db.uri,
                "--target-db", atlas_db.name, "--json", str(report))  # fmt: skip
    for path in [out, *out.rglob("*"), report]:
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path


@pytest.mark.parametrize(
    "path",
    [
        "dumps/final-20261129T2330Z/manifest.json",
        "backups/2026-11-29/studymaster/accounts_user.bson.gz",
        "verify-final.json",
        "dump-2026-11-29-rollback-studymaster-20261129T233000Z/manifest.json",
        "final.partial/.studymaster-partial",
    ],
)
def test_git_ignores_the_runbooks_folders_and_reports(path):
    result = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
    assert result.returncode == 0, f"{path} is not ignored by .gitignore"


def test_a_dump_inside_the_checkout_where_git_would_pick_it_up_is_warned_about(local_db):
    local_db.db["items"].insert_one({"_id": 1})
    args = ("--uri", local_db.uri, "--db", local_db.name)
    for folder, warned in (
        (ROOT / f"test-dump-{local_db.name}", True),
        (ROOT / "dumps" / local_db.name, False),
    ):
        try:
            code, _, err = run_command("export_local", "--out", str(folder), *args)
        finally:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
            if folder.parent.name == "dumps" and not any(folder.parent.iterdir()):
                folder.parent.rmdir()
        assert code == 0, err
        assert ("is inside the project's folder, where git would pick it up" in err) is warned, err


# -- 18. one default database on the Atlas side ------------------------------------------------------


def test_import_and_verify_default_to_the_database_the_application_reads(local_db, atlas_db, tmp_path):
    local_db.db["items"].insert_many([{"_id": n} for n in range(3)])
    run_command("export_local", "--out", str(tmp_path / "d"), "--uri", local_db.uri, "--db", local_db.name)
    with override_settings(
        ATLAS_MONGODB_URI=atlas_db.uri, LOCAL_MONGODB_URI=local_db.uri, MONGODB_DB_NAME=atlas_db.name
    ):
        code, out, err = run_command("import_atlas", "--from", str(tmp_path / "d"))
        assert code == 0, err
        assert f"writes database {atlas_db.name} on " in out.splitlines()[0]
        assert atlas_db.db["items"].count_documents({}) == 3
        code, out, err = run_command("verify_migration", "--db", local_db.name)
    assert code == 0, err
    assert out.splitlines()[0].endswith(
        f"and database {atlas_db.name} on {atlas_db.uri.split('@')[0].split('//')[0]}//***@"
        f"{atlas_db.uri.split('@')[1]} (ATLAS_MONGODB_URI); writes only its audit record, in the target's database."
    )
    assert compare(local_db, atlas_db).identical
