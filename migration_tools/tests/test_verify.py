"""verify finds each kind of tampering, and checks the domain invariants."""

import datetime
import threading

import bson
import pytest
from bson import SON, Int64

from gamification import invariants
from migration_tools import verify as verify_module
from migration_tools.dump import load_dump
from migration_tools.runs import AUDIT_COLLECTION
from migration_tools.tests.conftest import compare
from migration_tools.tests.factories import populate_awkward, populate_domain, rewrite_bson_file
from migration_tools.verify import LiveSide, format_report, verify


def _change_byte(db):
    db["field_order"].update_one({"_id": 1}, {"$set": {"a": 3}})


def _delete(db):
    db["validated"].delete_one({"_id": 2})


def _add(db):
    db["validated"].insert_one({"_id": 99, "name": "intruder"})


def _reorder(db):
    db["field_order"].replace_one({"_id": 0}, SON([("_id", 0), ("a", 2), ("b", 1), ("c", {"y": 1, "x": 2})]))


def _widen(db):
    db["validated"].update_one({"_id": 3}, {"$set": {"size": 1}})


def _drop_index(db):
    db["indexed"].drop_index("sp_sparse")


def _change_index(db):
    db["indexed"].drop_index("b_partial")
    db["indexed"].create_index("b", partialFilterExpression={"a": {"$gt": 1}}, name="b_partial")


def _change_option(db):
    db.command("collMod", "validated", validationLevel="moderate")


TAMPERING = {
    "changed value": (_change_byte, "different", "field_order"),
    "deleted document": (_delete, "missing", "validated"),
    "added document": (_add, "extra", "validated"),
    "reordered fields": (_reorder, "different", "field_order"),
    "new field": (_widen, "different", "validated"),
    "dropped index": (_drop_index, "index_differences", "indexed"),
    "changed index": (_change_index, "index_differences", "indexed"),
    "changed option": (_change_option, "option_differences", "validated"),
}


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_each_kind_of_tampering_is_found(local_db, atlas_db, migrate, kind):
    tamper, counter, collection = TAMPERING[kind]
    populate_awkward(local_db.db)
    migrate(local_db, atlas_db)
    assert compare(local_db, atlas_db).identical

    tamper(atlas_db.db)

    report = compare(local_db, atlas_db)
    assert not report.identical
    diff = next(c for c in report.collections if c.name == collection)
    assert getattr(diff, counter), format_report(report)
    others = [c.name for c in report.collections if not c.identical]
    assert others == [collection], format_report(report)


def test_int32_that_became_int64_is_a_difference(local_db, atlas_db, migrate):
    local_db.db["numbers"].insert_many([{"_id": n, "value": 7} for n in range(3)])
    migrate(local_db, atlas_db)
    atlas_db.db["numbers"].update_one({"_id": 1}, {"$set": {"value": Int64(7)}})
    # MongoDB's own equality says nothing changed; the bytes say it did.
    assert atlas_db.db["numbers"].count_documents({"value": 7}) == 3
    report = compare(local_db, atlas_db)
    diff = report.collections[0]
    assert (diff.different, diff.different_ids) == (1, ["1"])


def test_report_names_the_first_ids_and_counts(local_db, atlas_db, migrate):
    local_db.db["items"].insert_many([{"_id": n} for n in range(30)])
    migrate(local_db, atlas_db)
    atlas_db.db["items"].delete_many({"_id": {"$lt": 10}})
    atlas_db.db["items"].insert_many([{"_id": f"extra{n}"} for n in range(2)])
    report = compare(local_db, atlas_db)
    diff = report.collections[0]
    assert (diff.missing, diff.extra, diff.source_documents, diff.target_documents) == (10, 2, 30, 22)
    assert diff.missing_ids == ["0", "1", "2", "3", "4"]
    text = format_report(report)
    assert "DIFFERENCES FOUND" in text and "'extra0'" in text
    assert report.to_dict()["collections"][0]["missing"] == 10


def test_the_tools_own_collections_are_left_out_on_both_sides_and_said_so(local_db, atlas_db, migrate):
    local_db.db["items"].insert_one({"_id": 1})
    local_db.db["migration_tools_maintenance"].insert_one({"_id": "maintenance", "level": "on"})
    migrate(local_db, atlas_db)
    atlas_db.db[AUDIT_COLLECTION].insert_one({"command": "import_atlas"})
    atlas_db.db["migration_tools_syncstate"].insert_one({"_id": "state"})
    report = verify(
        LiveSide(local_db.db), atlas_db.db, source_label="s", target_label="t", source_db=local_db.name
    )
    assert report.identical, format_report(report)
    assert [c.name for c in report.collections] == ["items"]
    assert report.excluded == ["migration_tools_maintenance", AUDIT_COLLECTION, "migration_tools_syncstate"]
    assert (
        "Never compared: the migration tools' own collections (migration_tools_*): migration_tools_maintenance, "
        "migration_tools_migrationrun, migration_tools_syncstate." in format_report(report)
    )


def test_ttl_expired_documents_are_reported_as_expired_not_missing(local_db, atlas_db, migrate):
    old = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    local_db.db["tokens"].insert_many(
        [{"_id": 1, "at": old}, {"_id": 2, "at": datetime.datetime.now(datetime.UTC)}]
    )
    local_db.db["tokens"].create_index("at", expireAfterSeconds=60, name="at_ttl")
    migrate(local_db, atlas_db)
    # What the TTL monitor of the target does, whenever it runs.
    atlas_db.db["tokens"].delete_one({"_id": 1})
    report = compare(local_db, atlas_db)
    diff = report.collections[0]
    assert (diff.missing, diff.expired, diff.expired_ids) == (0, 1, ["1"])
    assert report.identical


def _throttle_counters(db, *, expires_at):
    """Two documents shaped like accounts_throttlecounter's, with its TTL index (expireAfterSeconds=0)."""
    db["accounts_throttlecounter"].insert_many(
        [{"_id": n, "key": f"login:{n}", "count": 1, "expires_at": expires_at} for n in (1, 2)]
    )
    db["accounts_throttlecounter"].create_index("expires_at", expireAfterSeconds=0, name="expires_at_ttl")


def test_documents_expired_on_the_source_after_the_export_are_expired_not_extra(local_db, atlas_db, migrate):
    """Issue 11, item 2: exported, then expired on the source; the target's TTL monitor has not run yet."""
    local_db.db["items"].insert_one({"_id": 1})
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30)
    _throttle_counters(local_db.db, expires_at=soon)
    dump, _ = migrate(local_db, atlas_db)
    # Before they expire, a target holding documents the source lost differs: two extra documents.
    local_db.db["accounts_throttlecounter"].delete_many({})  # what the source's TTL monitor does
    report = compare(local_db, atlas_db, now=soon - datetime.timedelta(seconds=10))
    assert not report.identical and report.collections[0].extra == 2
    later = soon + datetime.timedelta(seconds=1)
    report = compare(local_db, atlas_db, now=later)
    diff = report.collections[0]
    assert (diff.source_documents, diff.target_documents, diff.extra, diff.expired) == (0, 2, 0, 2)
    assert report.identical, format_report(report)
    assert "expired by TTL on either side (not a difference), first _ids: 1, 2" in format_report(report)
    # --dump mode, once the target's monitor has run too: the dump's own metadata knows the TTL.
    atlas_db.db["accounts_throttlecounter"].drop_indexes()
    atlas_db.db["accounts_throttlecounter"].delete_many({})
    report = verify(
        load_dump(dump), atlas_db.db, source_label="d", target_label="t", source_db="d", now=later
    )
    diff = report.collections[0]
    assert (diff.source_documents, diff.missing, diff.expired) == (2, 0, 2), format_report(report)
    assert diff.index_differences == ["index expires_at_ttl missing in the target"]


def test_a_ttl_index_on_either_side_counts_and_a_changed_expired_document_is_no_difference(
    local_db, atlas_db, migrate
):
    past = datetime.datetime(2001, 1, 1, tzinfo=datetime.UTC)
    local_db.db["sessions"].insert_many([{"_id": n, "seen": past, "n": n} for n in range(3)])
    migrate(local_db, atlas_db)
    # Only the target has the TTL index; the source's copy changed after the export.
    atlas_db.db["sessions"].create_index("seen", expireAfterSeconds=60, name="seen_ttl")
    local_db.db["sessions"].update_one({"_id": 0}, {"$set": {"n": 99}})
    report = compare(local_db, atlas_db)
    diff = report.collections[0]
    assert (diff.different, diff.expired) == (0, 1)
    assert diff.index_differences == ["index seen_ttl not in the source"]  # the index itself still counts


def test_domain_invariants_hold_after_a_clean_copy(local_db, atlas_db, migrate):
    populate_domain(local_db.db)
    migrate(local_db, atlas_db)
    report = compare(local_db, atlas_db)
    assert [(i.name, i.status) for i in report.invariants] == [
        ("points equal the ledger", "ok"),
        ("maintained totals equal the history", "ok"),
        ("gamification_userbadge per user", "ok"),
        ("gamification_achievement per user", "ok"),
        ("sessions_app_studysession per user", "ok"),
    ]


def test_domain_invariants_fail_on_points_and_per_user_counts(local_db, atlas_db, migrate):
    user_ids = populate_domain(local_db.db)
    migrate(local_db, atlas_db)
    atlas_db.db["accounts_user"].update_one({"_id": user_ids[0]}, {"$inc": {"points": 5}})
    atlas_db.db["sessions_app_studysession"].delete_one({"user_id": user_ids[1]})
    statuses = {i.name: i for i in compare(local_db, atlas_db).invariants}
    assert statuses["points equal the ledger"].status == "failed"
    assert str(user_ids[0]) in statuses["points equal the ledger"].detail
    assert statuses["sessions_app_studysession per user"].status == "failed"
    assert str(user_ids[1]) in statuses["sessions_app_studysession per user"].detail
    assert statuses["gamification_userbadge per user"].status == "ok"


def test_totals_a_dump_from_before_them_lacks_fail_until_recompute_totals_fixes_them(
    local_db, atlas_db, migrate
):
    user_ids = populate_domain(local_db.db)
    local_db.db["gamification_studytotal"].delete_many({"user_id": user_ids[2]})
    local_db.db["gamification_weekpoints"].delete_many({})
    migrate(local_db, atlas_db)
    statuses = {i.name: i for i in compare(local_db, atlas_db).invariants}
    totals = statuses["maintained totals equal the history"]
    assert totals.status == "failed", totals
    assert totals.detail.startswith("3 of 3 users differ (")
    assert "week points 3" in totals.detail and str(user_ids[2]) in totals.detail
    assert totals.detail.endswith("run manage.py recompute_totals --fix")


def test_invariants_skipped_when_collections_are_absent(local_db, atlas_db, migrate):
    local_db.db["items"].insert_one({"_id": 1})
    migrate(local_db, atlas_db)
    report = compare(local_db, atlas_db)
    assert {i.status for i in report.invariants} == {"skipped"}
    assert report.identical


def test_dump_in_natural_order_is_sorted_before_the_merge(local_db, atlas_db, export, migrate):
    local_db.db["items"].insert_many([{"_id": n, "v": n} for n in range(50)])
    out, _ = migrate(local_db, atlas_db)
    path = out / local_db.name / "items.bson"
    docs = [bson.encode({"_id": n, "v": n}) for n in reversed(range(50))]
    rewrite_bson_file(path, docs)
    (out / "manifest.json").unlink()
    report = verify(load_dump(out), atlas_db.db, source_label="d", target_label="t", source_db=local_db.name)
    assert report.identical, format_report(report)
    atlas_db.db["items"].delete_one({"_id": 7})
    report = verify(load_dump(out), atlas_db.db, source_label="d", target_label="t", source_db=local_db.name)
    assert report.collections[0].missing_ids == ["7"]


def test_a_failed_comparison_stops_the_target_invariants_running_beside_it(
    local_db, atlas_db, migrate, monkeypatch
):
    populate_domain(local_db.db)
    migrate(local_db, atlas_db)
    stopped = []

    def totals_check(db, *, sessions_model, stop, on_batch):
        stopped.append(stop.wait(10))
        raise AssertionError("its result must not be used")

    def merge(*args, **kwargs):
        raise verify_module.VerifyError("unsorted")

    monkeypatch.setattr(verify_module, "totals_check", totals_check)
    monkeypatch.setattr(verify_module, "_merge", merge)
    with pytest.raises(verify_module.VerifyError, match="unsorted"):
        compare(local_db, atlas_db)
    assert stopped == [True]
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("verify-invariants")]


def test_an_error_reading_the_target_invariants_is_raised_by_verify(local_db, atlas_db, migrate, monkeypatch):
    populate_domain(local_db.db)
    migrate(local_db, atlas_db)

    def totals_check(db, *, sessions_model, stop, on_batch):
        raise ConnectionError("target gone")

    monkeypatch.setattr(verify_module, "totals_check", totals_check)
    with pytest.raises(ConnectionError, match="target gone"):
        compare(local_db, atlas_db)


def test_points_are_checked_against_the_ledger_on_their_own_when_the_totals_cannot_be(
    local_db, atlas_db, migrate
):
    user_ids = populate_domain(local_db.db)
    migrate(local_db, atlas_db)
    # A session without a field the totals need: the totals fail, the ledger is still read.
    atlas_db.db["sessions_app_studysession"].update_many({}, {"$unset": {"duration_minutes": ""}})
    statuses = {i.name: i for i in compare(local_db, atlas_db).invariants}
    assert statuses["maintained totals equal the history"].status == "failed"
    assert statuses["points equal the ledger"] == verify_module.InvariantResult(
        "points equal the ledger", "ok", "3 users"
    )
    # No sessions at all: the totals are skipped, and the ledger still catches wrong points.
    atlas_db.db["sessions_app_studysession"].drop()
    atlas_db.db["accounts_user"].update_one({"_id": user_ids[0]}, {"$inc": {"points": 5}})
    statuses = {i.name: i for i in compare(local_db, atlas_db).invariants}
    assert statuses["maintained totals equal the history"].status == "skipped"
    ledger = statuses["points equal the ledger"]
    assert (ledger.status, ledger.detail) == ("failed", f"1 of 3 users differ (first: {user_ids[0]})")


DIGESTED = {
    "accounts_user",
    "sessions_app_studysession",
    "gamification_pointsentry",
    "gamification_studytotal",
    "gamification_weekpoints",
}


def _spy_on_merge(monkeypatch) -> list[str]:
    merged = []
    merge = verify_module._merge

    def spy(source_docs, target_docs, diff, **kwargs):
        merged.append(diff.name)
        return merge(source_docs, target_docs, diff, **kwargs)

    monkeypatch.setattr(verify_module, "_merge", spy)
    return merged


@pytest.mark.parametrize("from_dump", [False, True], ids=["live", "dump"])
def test_the_collections_the_totals_read_are_compared_by_their_hash_when_it_matches(
    local_db, atlas_db, migrate, monkeypatch, from_dump
):
    populate_domain(local_db.db)
    out, _ = migrate(local_db, atlas_db)
    merged = _spy_on_merge(monkeypatch)
    if from_dump:
        report = verify(
            load_dump(out), atlas_db.db, source_label="d", target_label="t", source_db=local_db.name
        )
    else:
        report = compare(local_db, atlas_db)
    assert report.identical, format_report(report)
    assert merged and not DIGESTED & set(merged)  # the others are still merged in _id order
    for diff in report.collections:
        count = atlas_db.db[diff.name].count_documents({})
        assert (diff.source_documents, diff.target_documents) == (count, count), diff.name


def test_a_collection_whose_hash_differs_is_merged_to_name_the_difference(
    local_db, atlas_db, migrate, monkeypatch
):
    user_ids = populate_domain(local_db.db)
    migrate(local_db, atlas_db)
    session = atlas_db.db["sessions_app_studysession"].find_one({"user_id": user_ids[1]})
    atlas_db.db["sessions_app_studysession"].update_one({"_id": session["_id"]}, {"$set": {"note": "x"}})
    merged = _spy_on_merge(monkeypatch)
    report = compare(local_db, atlas_db)
    diffs = {diff.name: diff for diff in report.collections}
    sessions = diffs["sessions_app_studysession"]
    assert (sessions.different, sessions.different_ids) == (1, [repr(session["_id"])])
    assert (sessions.source_documents, sessions.target_documents) == (6, 6)
    assert "sessions_app_studysession" in merged and "accounts_user" not in merged
    assert {i.name: i.status for i in report.invariants}["maintained totals equal the history"] == "ok"


def test_when_the_totals_cannot_be_read_every_collection_is_merged_exactly(
    local_db, atlas_db, migrate, monkeypatch
):
    populate_domain(local_db.db)
    migrate(local_db, atlas_db)
    atlas_db.db["sessions_app_studysession"].update_many({}, {"$unset": {"duration_minutes": ""}})
    merged = _spy_on_merge(monkeypatch)
    report = compare(local_db, atlas_db)
    assert set(merged) >= DIGESTED
    diffs = {diff.name: diff for diff in report.collections}
    assert (diffs["sessions_app_studysession"].different, diffs["sessions_app_studysession"].missing) == (
        6,
        0,
    )
    for name in DIGESTED - {"sessions_app_studysession"}:
        count = atlas_db.db[name].count_documents({})
        assert diffs[name].identical and diffs[name].source_documents == count, name


def test_documents_past_the_last_user_are_still_hashed_and_found(local_db, atlas_db, migrate, monkeypatch):
    populate_domain(local_db.db)
    # Orphans (their user_id sorts after every user's) on both sides, and two more on the target:
    # read by user in batches of 2, those come after what the check itself needs to read.
    sessions = "sessions_app_studysession"
    orphan = {"subject": "math", "subject_key": "math", "duration_minutes": 5}
    local_db.db[sessions].insert_many([{"user_id": bson.ObjectId("f" * 23 + end), **orphan} for end in "ef"])
    migrate(local_db, atlas_db)
    extra = [{"user_id": bson.ObjectId("f" * 24), **orphan} for _ in range(2)]
    atlas_db.db[sessions].insert_many(extra)
    monkeypatch.setattr(invariants, "TOTALS_BATCH_DOCUMENTS", 2)
    diff = {diff.name: diff for diff in compare(local_db, atlas_db).collections}[sessions]
    assert (diff.extra, diff.extra_ids) == (2, [repr(document["_id"]) for document in extra])
    assert (diff.source_documents, diff.target_documents) == (8, 10)
