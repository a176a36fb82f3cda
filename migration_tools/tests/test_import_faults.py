"""import_atlas under faults on its target: a crashed server, Atlas's 8000, write-concern errors.

The target is a durable embedded server (``--sync-on-commit``, test commands on). In every case
the command either completes or exits 2 with the classified message, and a rerun completes
with nothing lost or duplicated: verify_migration then reports the target identical (exit 0).
"""

from __future__ import annotations

import re
import threading
import time

import pytest
from django.test import override_settings

from migration_tools.tests.conftest import run_command as run
from migration_tools.tests.factories import populate_domain
from studymaster.embedded import EmbeddedMongo
from studymaster.mongo import APP_NAME

pytestmark = [
    pytest.mark.faults,
    pytest.mark.django_db,  # the audit record (MigrationRun) goes to the application's database
    pytest.mark.embedded_only("arms failpoints on, and kills, the target server"),
]

TARGET_DB = "imported"
# The import's first insert is its audit record, in the target's database.
AUDIT = 1
# populate_domain's collections imported before "items" (in name order), one insert each:
# accounts_user and gamification_{achievement,pointsentry,studytotal,userbadge,weekpoints}.
DOMAIN_BEFORE_ITEMS = 6
BATCH = 1000
ITEMS = 4 * BATCH  # the faults below land between known batches


@pytest.fixture(autouse=True)
def _small_batches(monkeypatch):
    from migration_tools import restore

    monkeypatch.setattr(restore, "BATCH_DOCUMENTS", BATCH)


@pytest.fixture
def target(tmp_path):
    server = EmbeddedMongo(tmp_path / "target", durable=True, test_commands=True)
    server.start()
    yield server
    server.close()


@pytest.fixture
def dump_dir(local_db, export):
    """A dump of the domain collections and 4,000 indexed items."""
    populate_domain(local_db.db)
    local_db.db["items"].insert_many([{"_id": n, "n": n, "payload": "p" * 100} for n in range(ITEMS)])
    local_db.db["items"].create_index("n", unique=True, name="n_unique")
    return export(local_db)


def _import(dump_dir, target):
    return run(
        "import_atlas", "--from", str(dump_dir), "--uri", target.uri(), "--db", TARGET_DB, "--no-snapshot"
    )


def _assert_identical(local_db, target):
    code, out, err = run(
        "verify_migration",
        "--source-uri",
        local_db.uri,
        "--db",
        local_db.name,
        "--target-uri",
        target.uri(),
        "--target-db",
        TARGET_DB,
    )
    assert code == 0, out + err
    assert "RESULT: IDENTICAL" in out


def _arm(target, *, skip: int, **data) -> None:
    """failCommand on the import's inserts, after the first ``skip`` of them succeed."""
    with target.client() as client:
        client.admin.command(
            "configureFailPoint",
            "failCommand",
            mode={"skip": skip},
            data={"failCommands": ["insert"], "appName": APP_NAME, **data},
        )


def _disarm(target) -> None:
    with target.client() as client:
        client.admin.command("configureFailPoint", "failCommand", mode="off")


def _items(target) -> int:
    with target.client() as client:
        return client[TARGET_DB]["items"].count_documents({})


@pytest.mark.slow
@override_settings(MONGODB_SERVER_SELECTION_TIMEOUT_MS=1500)
def test_target_killed_mid_import_then_rerun_completes_identical(local_db, dump_dir, target):
    # Hold the 4th insert of items (after the inserts of the 4 collections sorted before it, and 3 batches).
    _arm(target, skip=AUDIT + DOMAIN_BEFORE_ITEMS + 3, blockConnection=True, blockTimeMS=10_000)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("run", _import(dump_dir, target)))
    thread.start()
    deadline = time.monotonic() + 30
    while _items(target) < 3000:
        assert thread.is_alive(), result
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)  # the 4th batch is now held by the server
    target.kill()
    thread.join(timeout=60)
    assert not thread.is_alive()
    code, _, err = result["run"]
    assert code == 2, err
    # The audit record cannot be completed on a dead server: a warning, then the run's own error.
    *warnings, error = err.strip().splitlines()
    assert error.startswith(("unreachable:", "transient:")), err
    assert all(line.startswith("warning: the audit record") for line in warnings), err
    assert "Traceback" not in err

    target.restart()
    assert _items(target) == 3000  # acknowledged batches survived the crash, nothing more
    code, out, err = _import(dump_dir, target)
    assert code == 0, out + err
    assert re.search(r"items\s+inserted\s+1000, already identical\s+3000\b", out), out
    assert _items(target) == ITEMS
    _assert_identical(local_db, target)


def test_code_8000_on_an_insert_midway_exits_2_classified_and_the_rerun_completes(local_db, dump_dir, target):
    _arm(target, skip=AUDIT + DOMAIN_BEFORE_ITEMS + 2, errorCode=8000)
    try:
        code, out, err = _import(dump_dir, target)
    finally:
        _disarm(target)
    # The failpoint cannot carry Atlas's text: classified by code alone, as an Atlas refusal.
    assert code == 2, out + err
    assert err.startswith("atlas: Atlas refused the operation (AtlasError 8000"), err
    assert _items(target) == 2000
    code, out, err = _import(dump_dir, target)
    assert code == 0, out + err
    assert re.search(r"items\s+inserted\s+2000, already identical\s+2000\b", out), out
    _assert_identical(local_db, target)


WTIMEOUT = {"code": 64, "errmsg": "waiting for replication timed out", "errInfo": {"wtimeout": True}}
SHUTDOWN = {"code": 91, "errmsg": "Replication is being shut down"}


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"writeConcernError": WTIMEOUT}, "timeout:"),
        ({"writeConcernError": SHUTDOWN}, "transient:"),
        ({"writeConcernError": SHUTDOWN, "errorLabels": ["RetryableWriteError"]}, None),
    ],
    ids=["wtimeout64", "shutdown91", "shutdown91-retryable"],
)
def test_write_concern_error_on_an_insert_is_retried_or_exits_2_and_the_rerun_completes(
    local_db, dump_dir, target, fault, expected
):
    """Written but not known to be durable: the driver retries it when labelled, else exit 2."""
    _arm(target, skip=AUDIT + DOMAIN_BEFORE_ITEMS + 1, **fault)
    try:
        code, out, err = _import(dump_dir, target)
    finally:
        _disarm(target)
    if expected is None:
        assert code == 0, out + err
    else:
        assert code == 2, out + err
        assert err.startswith(expected), err
        code, out, err = _import(dump_dir, target)
        assert code == 0, out + err
        assert re.search(r"items\s+inserted\s+2000, already identical\s+2000\b", out), out
    assert _items(target) == ITEMS
    _assert_identical(local_db, target)
