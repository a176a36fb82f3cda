"""An import stopped midway (Ctrl-C, SIGKILL), run again, completes with nothing lost or duplicated."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migration_tools.runs import AUDIT_COLLECTION
from migration_tools.tests.conftest import compare
from migration_tools.verify import format_report

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = 15000


def _start_import(local_db, atlas_db, export):
    """An import of DOCUMENTS items in its own process, stopped once 3,000 are in; (process, command)."""
    local_db.db["items"].insert_many([{"_id": n, "payload": "p" * 200, "n": n} for n in range(DOCUMENTS)])
    local_db.db["items"].create_index("n", unique=True, name="n_unique")
    dump_dir = export(local_db)
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="studymaster.settings.test")
    command = [
        sys.executable,
        "manage.py",
        "import_atlas",
        "--from",
        str(dump_dir),
        "--uri",
        atlas_db.uri,
        "--db",
        atlas_db.name,
        "--no-snapshot",
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while atlas_db.db["items"].estimated_document_count() < 3000:
        assert process.poll() is None, "the import ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return process, lambda: subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_ctrl_c_during_an_import_is_one_line_exit_130_recorded_and_the_rerun_resumes(
    local_db, atlas_db, export
):
    """Issue 11, item 7: no KeyboardInterrupt traceback; the audit record says interrupted."""
    process, rerun = _start_import(local_db, atlas_db, export)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err == "CommandError: interrupted; run the same command again to resume\n"
    record = atlas_db.db[AUDIT_COLLECTION].find_one({"command": "import_atlas"})
    assert (record["status"], record["exit_code"], record["message"]) == ("interrupted", 130, "interrupted")
    assert record["finished_at"] is not None
    again = rerun()
    assert again.returncode == 0, again.stdout + again.stderr
    assert atlas_db.db["items"].count_documents({}) == DOCUMENTS
    assert compare(local_db, atlas_db).identical


@pytest.mark.slow
def test_import_killed_midway_then_rerun_is_complete_and_identical(local_db, atlas_db, export):
    process, rerun = _start_import(local_db, atlas_db, export)
    process.send_signal(signal.SIGKILL)
    process.wait()
    # The server finishes the batch it had received; wait until the count settles.
    interrupted_at = -1
    while interrupted_at != (interrupted_at := atlas_db.db["items"].count_documents({})):
        time.sleep(0.3)
    assert 0 < interrupted_at < DOCUMENTS
    assert not [i for i in atlas_db.db["items"].list_indexes() if i["name"] == "n_unique"]

    rerun = rerun()

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert (
        f"{DOCUMENTS - interrupted_at} documents inserted, {interrupted_at} already identical" in rerun.stdout
    )
    assert atlas_db.db["items"].count_documents({}) == DOCUMENTS
    report = compare(local_db, atlas_db)
    assert report.identical, format_report(report)
