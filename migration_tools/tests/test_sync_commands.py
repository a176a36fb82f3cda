"""sync_atlas as a command: what it cannot do (exit 2, said clearly, nothing half-done), refusals, signals."""

from __future__ import annotations

import json
import signal
import socket
import uuid

import pytest
from bson import Timestamp
from django.test import override_settings

from migration_tools.runs import AUDIT_COLLECTION
from migration_tools.sync import LiveSync
from migration_tools.sync.state import LEASE_ID, STATE_COLLECTION
from migration_tools.sync.stream import history_is_lost
from migration_tools.tests.sync_support import (
    Database,
    between,
    client,
    compare,
    options,
    state,
    sync_command,
    sync_process,
    wait_for,
)
from migration_tools.verify import format_report
from studymaster.embedded import EmbeddedMongo

pytestmark = pytest.mark.django_db  # the application's database (MONGODB_URI) stays the source


run = sync_command


@pytest.fixture(scope="module")
def standalone_server():
    with EmbeddedMongo(":memory:", standalone=True) as server:
        yield server


@pytest.fixture(scope="module")
def small_oplog_server():
    with EmbeddedMongo(":memory:", oplog_max_entries=20) as server:
        yield server


@pytest.fixture
def small_oplog_db(small_oplog_server):
    database = Database(small_oplog_server.uri(), f"test_sync_{uuid.uuid4().hex[:8]}")
    with client(database.uri) as mongo:
        database.db = mongo[database.name]
        yield database
        mongo.drop_database(database.name)


@pytest.mark.embedded_only("starts a standalone server")
def test_a_standalone_source_cannot_run_and_says_how_to_make_it_a_replica_set(standalone_server, atlas_db):
    with client(standalone_server.uri()) as mongo:
        mongo.app.items.insert_one({"_id": 1})
        code, _, err = run(*between(Database(standalone_server.uri(), "app"), atlas_db))
        mongo.drop_database("app")
    assert code == 2
    assert "standalone source:" in err and "it keeps no oplog, so there is no change stream" in err
    assert "--replSet rs0" in err and "rs.initiate()" in err and "freeze-based runbook" in err
    assert atlas_db.db.list_collection_names() == [AUDIT_COLLECTION]  # nothing but the run's record
    assert [(run["command"], run["exit_code"]) for run in atlas_db.db[AUDIT_COLLECTION].find()] == [
        ("sync_atlas", 2)
    ]


@pytest.mark.embedded_only("trims the oplog of a server of its own")
def test_lost_history_cannot_run_and_restart_copies_afresh(small_oplog_db, small_oplog_server, atlas_db):
    small_oplog_db.db.items.insert_many([{"_id": n, "n": n} for n in range(30)])
    LiveSync(options(small_oplog_db, atlas_db, stop_when="caught_up"), say=lambda line: None).run()
    saved = state(atlas_db.db)
    for n in range(30, 90):  # more changes than the oplog keeps, while no sync runs
        small_oplog_db.db.items.insert_one({"_id": n, "n": n})
    small_oplog_db.db.items.delete_many({"_id": {"$lt": 10}})
    small_oplog_server.prune_oplog()

    code, _, err = run(*between(small_oplog_db, atlas_db))

    assert code == 2
    assert err.startswith(
        "history lost: the point this sync must resume from is no longer in the source's oplog"
    )
    assert "(ChangeStreamHistoryLost, code 286)" in err and "--restart --yes" in err
    assert state(atlas_db.db)["stream"] == saved["stream"]  # nothing half-done
    assert atlas_db.db.items.count_documents({}) == 30

    figures = LiveSync(
        options(small_oplog_db, atlas_db, restart=True, stop_when="verified"), say=lambda line: None
    ).run()
    assert figures.copy == {"collections": 1, "inserted": 60, "replaced": 0, "deleted": 10, "identical": 20}
    report = compare(small_oplog_db.db, atlas_db.db)
    assert report.identical, format_report(report)


@pytest.mark.embedded_only("trims the oplog of a server of its own")
def test_history_is_lost_once_the_oplog_starts_after_the_position(small_oplog_db, small_oplog_server):
    with client(small_oplog_db.uri) as mongo:
        before = mongo.admin.command("hello")["operationTime"]
        assert not history_is_lost(mongo, before)
        small_oplog_db.db.items.insert_many([{"_id": n} for n in range(40)])
        small_oplog_server.prune_oplog()
        assert history_is_lost(mongo, before)
        assert not history_is_lost(mongo, mongo.admin.command("hello")["operationTime"])
        assert not history_is_lost(mongo, None)
        assert history_is_lost(mongo, Timestamp(1, 1))


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda db: db.other.drop(), "the collection other was dropped on the source"),
        (lambda db: db.other.rename("renamed"), "the collection other was renamed to renamed on the source"),
    ],
    ids=["drop", "rename"],
)
def test_a_dropped_or_renamed_collection_stops_the_sync_after_the_changes_before_it(
    local_db, atlas_db, tmp_path, change, said
):
    local_db.db.items.insert_many([{"_id": n} for n in range(5)])
    local_db.db.other.insert_many([{"_id": n} for n in range(3)])
    LiveSync(options(local_db, atlas_db, stop_when="caught_up"), say=lambda line: None).run()
    local_db.db.items.insert_many([{"_id": n} for n in range(5, 8)])
    change(local_db.db)
    local_db.db.items.insert_one({"_id": 99})
    figures_path = tmp_path / "figures.json"

    code, out, err = run(*between(local_db, atlas_db, "--json", str(figures_path), "-v", "0"))

    assert code == 2 and out == ""
    assert err.startswith(f"source changed: {said}. Every change before it is applied on the target")
    assert "--restart --yes" in err
    assert sorted(doc["_id"] for doc in atlas_db.db.items.find()) == list(range(8))  # not 99
    assert atlas_db.db.other.count_documents({}) == 3  # the target's copy is left as it was
    figures = json.loads(figures_path.read_text())
    assert figures["events_by_kind"] == {"insert": 3} and figures["phase"] == "follow"
    assert run(*between(local_db, atlas_db))[0] == 2  # the same answer again, nothing skipped


def test_a_second_run_on_the_same_target_cannot_run_and_sigterm_ends_the_first_with_exit_0(
    local_db, atlas_db, tmp_path
):
    local_db.db.items.insert_many([{"_id": n} for n in range(10)])
    figures_path = tmp_path / "figures.json"
    process = sync_process(local_db, atlas_db, tmp_path / "sync.log", "--json", str(figures_path))
    try:
        wait_for(
            lambda: (state(atlas_db.db) or {}).get("copy", {}).get("done"),
            alive=lambda: process.poll() is None,
        )
        local_db.db.items.insert_one({"_id": 10})

        code, _, err = run(*between(local_db, atlas_db))

        assert code == 2
        assert err.startswith(
            f"already running: another sync_atlas run holds the target database {atlas_db.name}"
        )
        assert f"host {socket.gethostname()}, process {process.pid}" in err
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=60)
    log = (tmp_path / "sync.log").read_text()
    assert returncode == 0, log
    assert "Stopped (signal); the state is saved on the target: run the same command again to resume." in log
    assert json.loads(figures_path.read_text())["stopped_by"] == "signal"
    assert atlas_db.db[STATE_COLLECTION].find_one({"_id": LEASE_ID})["released_at"] is not None
    assert atlas_db.db.items.count_documents({}) == 11


def test_restart_needs_yes_and_a_target_is_required(local_db, atlas_db):
    code, _, err = run(*between(local_db, atlas_db, "--restart"))
    assert code == 1 and "add --yes to confirm" in err
    with override_settings(ATLAS_MONGODB_URI=""):
        code, _, err = run("--source-uri", local_db.uri)
    assert code == 2 and "No target: set ATLAS_MONGODB_URI or pass --target-uri" in err
    code, _, err = run(*between(local_db, local_db))
    assert code == 1 and "the source and the target are the same server and database" in err
    assert atlas_db.db.list_collection_names() == []
