"""Pinned deviations of SecantusDB from MongoDB (docs/architecture.md: defects A, B and C, then
the change-stream and oplog ones found for the live sync).

Each test asserts today's *wrong* answer, so it fails the day the surrogate is fixed;
then remove the workaround it names and turn the assertion around.
"""

import pytest
from bson import Timestamp

pytestmark = pytest.mark.embedded_only("pins defects of the SecantusDB surrogate, not MongoDB behaviour")


@pytest.fixture
def people(local_db):
    collection = local_db.db.people
    collection.insert_many(
        [
            {"_id": 1, "name": "ada", "profile": {"city": "London", "lang": "en"}},
            {"_id": 2, "name": "kim", "profile": {"city": "Seoul", "lang": "ko"}},
        ]
    )
    return collection


def test_defect_a_nested_inclusion_in_project_returns_literal_one(people):
    """MongoDB gives {"profile": {"city": "London"}}; SecantusDB gives {"profile": {"city": 1}}.

    Workaround: annotate with an alias (annotate(uname=F("user__username"))), and the
    permission-reading auth backend in accounts/backends.py, so staff keep admin access.
    """
    rows = list(people.aggregate([{"$project": {"profile": {"city": 1}}}, {"$sort": {"_id": 1}}]))
    assert rows[0]["profile"] == {"city": 1}  # MongoDB: {"city": "London"}


def test_defect_b_add_fields_with_nested_object_replaces_instead_of_merging(people):
    """MongoDB merges {"profile": {"tier": "gold"}} into the embedded document; SecantusDB replaces it.

    Workaround: order by local fields (content_type_id), never through select_related paths.
    """
    rows = list(people.aggregate([{"$addFields": {"profile": {"tier": "gold"}}}, {"$sort": {"_id": 1}}]))
    assert rows[0]["profile"] == {"tier": "gold"}  # MongoDB: {"city": "London", "lang": "en", "tier": "gold"}


def test_defect_c_type_of_missing_expression_is_object(people):
    """MongoDB answers "missing"; SecantusDB answers "object", so JSONField has_key matches every row.

    Workaround: filter with key__isnull=False instead of has_key.
    """
    missing_key = {"$getField": {"field": "nope", "input": "$profile"}}  # the shape has_key emits
    rows = list(people.aggregate([{"$project": {"t": {"$type": missing_key}}}, {"$sort": {"_id": 1}}]))
    assert rows[0]["t"] == "object"  # MongoDB: "missing"
    present_key = {"$getField": {"field": "city", "input": "$profile"}}
    rows = list(people.aggregate([{"$project": {"t": {"$type": present_key}}}, {"$sort": {"_id": 1}}]))
    assert rows[0]["t"] == "string"  # right here: only the missing case is wrong


# -- change streams and the oplog (found while building the live sync, migration_tools/sync/) -------
@pytest.fixture(scope="module")
def small_oplog():
    """A server whose oplog keeps 20 entries, trimmed on demand (SecantusDB trims every 1,000 writes)."""
    from studymaster.embedded import EmbeddedMongo

    with EmbeddedMongo(":memory:", oplog_max_entries=20) as server:
        yield server


def test_defect_an_open_change_stream_skips_silently_past_a_trimmed_oplog(small_oplog):
    """MongoDB fails the next getMore with ChangeStreamHistoryLost (286); SecantusDB skips ahead.

    Workaround: the live sync compares how far its open stream has read with the oplog's
    oldest entry (migration_tools/sync/stream.py, history_is_lost) and stops with code 286's advice.
    """
    client = small_oplog.client()
    collection = client.deviations_stream.items
    stream = collection.watch(batch_size=5)
    collection.insert_many([{"_id": n} for n in range(10)])
    assert stream.try_next()["documentKey"] == {"_id": 0}
    collection.insert_many([{"_id": n} for n in range(10, 100)])
    assert small_oplog.prune_oplog() > 0
    seen = []
    while (event := stream.try_next()) is not None:  # MongoDB: OperationFailure, code 286
        seen.append(event["documentKey"]["_id"])
    stream.close()
    assert 10 not in seen and seen[-1] == 99  # events 10 to ~79 were never delivered, and nothing said so


def test_defect_start_at_operation_time_before_the_oplog_does_not_fail(small_oplog):
    """MongoDB refuses a start before the oplog's oldest entry (286); SecantusDB starts at that entry.

    Workaround: the live sync never starts from a time, only from a resume token, whose
    resumption SecantusDB does refuse with 286 (tested in migration_tools/tests/test_sync_commands.py).
    """
    client = small_oplog.client()
    collection = client.deviations_start.items
    collection.insert_many([{"_id": n} for n in range(60)])
    small_oplog.prune_oplog()
    hour_ago = client.admin.command("hello")["operationTime"].time - 3600
    with collection.watch(start_at_operation_time=Timestamp(hour_ago, 1)) as stream:  # MongoDB: code 286
        assert stream.try_next() is not None


def test_defect_collstats_stage_reports_no_bytes(local_db):
    """``$collStats`` storageStats gives size 0 where the collStats command gives the real size.

    Workaround: the live sync's quota pre-flight reads the collStats command
    (migration_tools/sync/copy.py, source_size).
    """
    local_db.db.items.insert_many([{"_id": n, "payload": "p" * 1000} for n in range(50)])
    stage = next(local_db.db.items.aggregate([{"$collStats": {"storageStats": {}}}]))["storageStats"]
    command = local_db.db.command("collStats", "items")
    assert stage["size"] == 0 and stage["count"] == 50  # MongoDB: the same size as the command's
    assert command["size"] > 50_000
