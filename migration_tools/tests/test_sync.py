"""The live sync, run in-process against the embedded servers: copy, follow, verify, refusals."""

from __future__ import annotations

import datetime
import socket

import pytest
from bson import Int64
from pymongo import ReplaceOne

from migration_tools.sync import STATE_COLLECTION, LiveSync, SyncError, SyncInterrupted, SyncRefused
from migration_tools.sync.apply import (
    Applier,
    BatchResult,
    Pacer,
    RefreshSet,
    coalesce,
    command_count,
    id_key,
)
from migration_tools.sync.state import LEASE_ID
from migration_tools.tests.factories import populate_awkward
from migration_tools.tests.sync_support import (
    ChangeWriter,
    SyncThread,
    compare,
    mark,
    options,
    state,
    synced,
    wait_for,
)
from migration_tools.verify import format_report


@pytest.mark.slow
def test_writes_during_the_copy_and_the_catch_up_all_arrive_byte_for_byte(local_db, atlas_db):
    populate_awkward(local_db.db)
    # Enough documents that the copy takes a while, so the writer's changes overlap it.
    local_db.db["bulk"].insert_many([{"_id": n, "payload": "p" * 300, "n": Int64(n)} for n in range(15000)])
    writer = ChangeWriter(local_db.uri, local_db.name)
    writer.prepare()
    writer.start()
    run = SyncThread(options(local_db, atlas_db))
    run.start()
    wait_for(
        lambda: (state(atlas_db.db) or {}).get("copy", {}).get("done"), what="the copy", alive=run.is_alive
    )
    rounds_during_copy = writer.rounds
    wait_for(lambda: writer.rounds > rounds_during_copy + 30, what="writes during the catch-up")
    writer.stopping.set()
    writer.join()
    assert writer.error is None
    marker = mark(local_db.db)
    wait_for(lambda: synced(atlas_db.db, marker), what="the sync to catch up and verify", alive=run.is_alive)
    run.finish()

    assert rounds_during_copy > 0, "no write overlapped the copy"
    report = compare(local_db.db, atlas_db.db)
    assert report.identical, format_report(report)
    figures = run.figures
    assert figures.stopped_by == "signal"
    assert figures.verification["full_pass_done"] and figures.verification["differences"] == 0
    kinds = figures.events_by_kind
    assert kinds["insert"] and kinds["update"] and kinds["replace"] and kinds["delete"]
    assert figures.copy["inserted"] >= 15000
    assert figures.updates_without_post_image > 0  # updates whose document was deleted before they were read
    # The unique-index swaps reached the target in the source's end state.
    assert list(atlas_db.db["pairs"].find({}, sort=[("_id", 1)])) == list(
        local_db.db["pairs"].find({}, sort=[("_id", 1)])
    )


def test_indexes_options_and_views_are_copied_and_their_changes_followed(local_db, atlas_db):
    populate_awkward(local_db.db)
    run = SyncThread(options(local_db, atlas_db))
    run.start()
    wait_for(
        lambda: (state(atlas_db.db) or {}).get("copy", {}).get("done"), what="the copy", alive=run.is_alive
    )
    local_db.db["indexed"].create_index("b", name="b_later")
    local_db.db["indexed"].drop_index("a_b_compound")
    local_db.db.create_collection("created_later", capped=True, size=65536)
    local_db.db["created_later"].insert_one({"_id": 1})
    local_db.db.command({"create": "view_later", "viewOn": "indexed", "pipeline": [{"$match": {"a": 1}}]})
    marker = mark(local_db.db)
    wait_for(lambda: synced(atlas_db.db, marker), what="the sync", alive=run.is_alive)
    run.finish()

    report = compare(local_db.db, atlas_db.db)
    assert report.identical, format_report(report)
    names = {index["name"] for index in atlas_db.db["indexed"].list_indexes()}
    assert "b_later" in names and "a_b_compound" not in names
    assert atlas_db.db["created_later"].options().get("capped") is True
    views = {info["name"]: info for info in atlas_db.db.list_collections(filter={"type": "view"})}
    assert set(views) == {"indexed_positive", "view_later"}
    assert views["view_later"]["options"]["pipeline"] == [{"$match": {"a": 1}}]


def test_a_rerun_resumes_from_the_saved_token_with_nothing_doubled(local_db, atlas_db):
    local_db.db["items"].insert_many([{"_id": n, "n": n} for n in range(100)])
    first = LiveSync(options(local_db, atlas_db, stop_when="caught_up"), say=lambda line: None)
    first.run()
    saved = state(atlas_db.db)
    local_db.db["items"].insert_many([{"_id": n, "n": n} for n in range(100, 150)])
    local_db.db["items"].update_many({"_id": {"$lt": 10}}, {"$inc": {"n": 1000}})

    lines = []
    second = LiveSync(options(local_db, atlas_db, stop_when="verified"), say=lines.append)
    figures = second.run()

    assert "Resuming from the state saved on the target." in lines
    assert figures.copy == {"collections": 1, "inserted": 100, "replaced": 0, "deleted": 0, "identical": 0}
    assert figures.events_by_kind == {"insert": 50, "update": 10}  # only what came after the first run
    assert state(atlas_db.db)["start"] == saved["start"]
    report = compare(local_db.db, atlas_db.db)
    assert report.identical, format_report(report)


def test_the_live_verification_reports_documents_that_differ_and_settles_when_fixed(local_db, atlas_db):
    local_db.db["items"].insert_many([{"_id": n, "n": n} for n in range(50)])
    LiveSync(options(local_db, atlas_db, stop_when="caught_up"), say=lambda line: None).run()
    # Behind the sync's back: the kind of damage the verification exists to find.
    atlas_db.db["items"].update_one({"_id": 3}, {"$set": {"n": Int64(3)}})
    atlas_db.db["items"].delete_one({"_id": 4})
    atlas_db.db.command("collMod", "items", validator={"n": {"$exists": True}})
    atlas_db.db[STATE_COLLECTION].update_one({"_id": "state"}, {"$set": {"verify": {}}})  # a new full pass

    figures = LiveSync(options(local_db, atlas_db, stop_when="verified"), say=lambda line: None).run()

    differences = figures.verification["first_differences"]
    assert figures.verification["differences"] == 3, differences
    assert "items: _id 3 differs" in differences and "items: _id 4 differs" in differences
    assert any(text.startswith("items: validator") for text in differences)

    atlas_db.db["items"].replace_one({"_id": 3}, local_db.db["items"].find_one({"_id": 3}))
    local_db.db["items"].update_one({"_id": 4}, {"$set": {"n": 40}})  # its event writes it again
    atlas_db.db.command("collMod", "items", validator={})
    local_db.db["items"].update_one({"_id": 3}, {"$set": {"touched": True}})
    figures = LiveSync(options(local_db, atlas_db, stop_when="verified"), say=lambda line: None).run()
    # The documents settled: the changed one was rechecked, the deleted one written again.
    assert not [text for text in figures.verification["first_differences"] if "_id" in text]


def test_a_stop_during_the_copy_is_an_interruption_and_the_rerun_resumes_it(local_db, atlas_db):
    local_db.db["items"].insert_many([{"_id": n, "payload": "p" * 500} for n in range(2000)])
    interrupted = LiveSync(options(local_db, atlas_db, batch_bytes=64 * 1024), say=lambda line: None)
    interrupted.stop.set()  # as SIGINT would, before the first batch is written
    with pytest.raises(
        SyncInterrupted, match=r"interrupted during the initial copy \(0 of 1 collections copied"
    ):
        interrupted.run()
    copied = atlas_db.db["items"].count_documents({})
    assert 0 < copied < 2000 and not state(atlas_db.db)["copy"]["done"]

    # Paced as by default: the same result, and the operations it sent are counted.
    figures = LiveSync(
        options(local_db, atlas_db, max_ops_per_second=80, stop_when="verified"), say=lambda line: None
    ).run()
    assert figures.copy == {
        "collections": 1,
        "inserted": 2000 - copied,
        "replaced": 0,
        "deleted": 0,
        "identical": copied,
    }
    assert figures.target_operations > 0
    report = compare(local_db.db, atlas_db.db)
    assert report.identical, format_report(report)


def test_the_same_server_and_database_on_both_sides_is_refused(local_db):
    with pytest.raises(SyncRefused, match="same server and database"):
        LiveSync(options(local_db, local_db, stop_when="caught_up"), say=lambda line: None).run()


def test_a_target_holding_other_data_is_refused_unless_restart_makes_it_identical(local_db, atlas_db):
    local_db.db["items"].insert_many([{"_id": n, "n": n} for n in range(20)])
    atlas_db.db["items"].insert_many([{"_id": n, "n": n if n % 2 else -n} for n in range(10, 30)])
    with pytest.raises(SyncRefused, match="already holds documents .items. and no sync state"):
        LiveSync(options(local_db, atlas_db, stop_when="caught_up"), say=lambda line: None).run()
    assert atlas_db.db["items"].count_documents({}) == 20  # untouched

    figures = LiveSync(
        options(local_db, atlas_db, restart=True, stop_when="verified"), say=lambda line: None
    ).run()
    assert figures.copy == {"collections": 1, "inserted": 10, "replaced": 5, "deleted": 10, "identical": 5}
    report = compare(local_db.db, atlas_db.db)
    assert report.identical, format_report(report)


def test_the_quota_preflight_refuses_before_copying_anything(local_db, atlas_db):
    local_db.db["items"].insert_many([{"_id": n, "payload": "p" * 1000} for n in range(300)])
    with pytest.raises(SyncRefused) as refused:
        LiveSync(
            options(local_db, atlas_db, quota_mb=0.1, stop_when="caught_up"), say=lambda line: None
        ).run()
    message = str(refused.value)
    assert message.startswith("refused, nothing copied: the source database")
    assert "KB of data and" in message and "more than --quota-mb 0.1 (102.4 KB)" in message
    assert [name for name in atlas_db.db.list_collection_names() if name != STATE_COLLECTION] == []
    assert state(atlas_db.db) is None


def test_a_live_lease_held_elsewhere_is_refused_naming_its_holder(local_db, atlas_db):
    local_db.db["items"].insert_one({"_id": 1})
    now = datetime.datetime.now(datetime.UTC)
    atlas_db.db[STATE_COLLECTION].insert_one(
        {
            "_id": LEASE_ID,
            "holder": {"host": "other-host.example", "pid": 4242, "run_id": "x", "process_started": None},
            "acquired_at": now,
            "renewed_at": now,
            "expires_at": now + datetime.timedelta(seconds=15),
            "released_at": None,
        }
    )
    with pytest.raises(SyncError, match=r"already running: .* host other-host.example, process 4242"):
        LiveSync(options(local_db, atlas_db, stop_when="caught_up"), say=lambda line: None).run()
    assert state(atlas_db.db) is None


def test_a_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(local_db, atlas_db):
    local_db.db["items"].insert_one({"_id": 1})
    now = datetime.datetime.now(datetime.UTC)
    dead_pid = 2**22 + 17  # above Linux's pid_max default, so no such process
    atlas_db.db[STATE_COLLECTION].insert_one(
        {
            "_id": LEASE_ID,
            "holder": {"host": socket.gethostname(), "pid": dead_pid, "run_id": "y", "process_started": None},
            "acquired_at": now,
            "renewed_at": now,
            "expires_at": now + datetime.timedelta(seconds=15),
            "released_at": None,
        }
    )
    lines = []
    LiveSync(options(local_db, atlas_db, stop_when="caught_up"), say=lines.append).run()
    assert f"Took over from process {dead_pid} on this host, which no longer runs." in lines
    lease = atlas_db.db[STATE_COLLECTION].find_one({"_id": LEASE_ID})
    assert lease["released_at"] is not None and lease["holder"]["run_id"] != "y"


def test_a_state_from_another_source_is_refused(local_db, atlas_db, local_server):
    local_db.db["items"].insert_one({"_id": 1})
    LiveSync(options(local_db, atlas_db, stop_when="caught_up"), say=lambda line: None).run()
    other = local_db.client[local_db.name + "_other"]
    other["items"].insert_one({"_id": 1})
    try:
        sync_options = options(local_db, atlas_db, stop_when="caught_up")
        sync_options.source_db = other.name
        with pytest.raises(SyncRefused, match="holds the state of a sync from"):
            LiveSync(sync_options, say=lambda line: None).run()
    finally:
        local_db.client.drop_database(other.name)


def test_documents_that_swapped_unique_values_are_written_again_whatever_the_order(local_db, atlas_db):
    for db, emails in ((local_db.db, ["b@x", "a@x"]), (atlas_db.db, ["a@x", "b@x"])):
        db.pairs.insert_many([{"_id": n, "email": email} for n, email in enumerate(emails)])
        db.pairs.create_index("email", unique=True)
    refresh = RefreshSet()
    applier = Applier(atlas_db.db, local_db.db, pacer=Pacer(0), refresh=refresh)
    # Each post-image alone collides with the other document's old value.
    applier.write(
        "pairs",
        [
            (
                "replace",
                ReplaceOne({"_id": n}, local_db.db.pairs.find_one({"_id": n}), upsert=True),
                id_key({"_id": n}),
            )
            for n in (0, 1)
        ],
        BatchResult(),
    )
    assert len(refresh) == 2 and list(atlas_db.db.pairs.find({}, {"_id": 0})) == [
        {"email": "a@x"},
        {"email": "b@x"},
    ]

    assert applier.refresh_documents() == 0
    assert list(atlas_db.db.pairs.find({}, sort=[("_id", 1)])) == list(
        local_db.db.pairs.find({}, sort=[("_id", 1)])
    )
    assert applier.refreshed == 2


def test_the_pacer_spaces_operations_to_its_rate(monkeypatch):
    slept = []
    monkeypatch.setattr("migration_tools.sync.apply.time.sleep", slept.append)
    pacer = Pacer(10)
    for _ in range(5):
        pacer.take()
    pacer.take(5)
    assert pacer.operations == 10
    # The clock stands still here (sleep is recorded, not done): each wait is from the start.
    assert slept == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5], abs=0.02)  # the first goes at once
    unlimited = Pacer(0)
    unlimited.take(1000)
    assert len(slept) == 5


def test_a_batch_keeps_each_ids_last_whole_write_and_its_later_updates_deletes_first():
    writes = [
        ("replace", "a1", b"a"),
        ("delta", "a+", b"a"),
        ("replace", "b1", b"b"),
        ("delete", "a-", b"a"),
        ("replace", "c1", b"c"),
        ("delta", "c+", b"c"),
        ("delta", "d+", b"d"),
        ("replace", "b2", b"b"),
    ]
    assert [operation for _, operation, _ in coalesce(writes)] == ["a-", "c1", "c+", "d+", "b2"]
    assert command_count([kind for kind, _, _ in coalesce(writes)]) == 2
