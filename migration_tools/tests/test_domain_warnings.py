"""export_local's domain warnings, gathered from the exported bytes: orphans and points off the ledger."""

from bson import Int64, ObjectId

from gamification.invariants import UserTally
from migration_tools.dump import PER_USER_MODELS


def _tally(export, db) -> list[str]:
    tally = UserTally(PER_USER_MODELS)
    export(db, tally=tally)
    return tally.warnings()


def test_clean_data_has_no_warnings(local_db, export):
    user = ObjectId()
    local_db.db.accounts_user.insert_one({"_id": user, "username": "ada", "points": 30})
    local_db.db.gamification_pointsentry.insert_many(
        [
            {"_id": ObjectId(), "user_id": user, "amount": 10},
            {"_id": ObjectId(), "user_id": user, "amount": Int64(20)},
        ]
    )
    local_db.db.sessions_app_studysession.insert_one({"_id": ObjectId(), "user_id": user})
    assert _tally(export, local_db) == []


def test_orphans_and_points_off_the_ledger_in_either_layout(local_db, export):
    user, gone = ObjectId(), ObjectId()
    local_db.db.accounts_user.insert_one({"_id": user, "username": "ada", "points": 100})
    local_db.db.gamification_pointsentry.insert_many(
        [
            {"_id": ObjectId(), "user_id": user, "amount": Int64(40)},  # read at fixed offsets
            {"_id": ObjectId(), "user_id": user, "reason": "x", "amount": 50.0},  # decoded
            {"_id": "not-an-objectid", "user_id": user, "amount": 5},  # decoded
        ]
    )
    local_db.db.sessions_app_studysession.insert_many(
        [
            {"_id": ObjectId(), "user_id": gone},
            {"_id": ObjectId(), "subject": "no user at all"},
            {"_id": ObjectId(), "user_id": user},
        ]
    )
    warnings = _tally(export, local_db)
    assert "sessions_app_studysession: 2 document(s) whose user does not exist (orphans)." in warnings
    assert any(
        w.startswith("accounts_user: 1 user(s) whose points differ") and str(user) in w for w in warnings
    )
    assert len(warnings) == 2


def test_no_users_exported_means_no_warnings(local_db, export):
    local_db.db.sessions_app_studysession.insert_one({"_id": ObjectId(), "user_id": ObjectId()})
    assert _tally(export, local_db) == []
