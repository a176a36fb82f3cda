"""The points of a study session, and the quest rewards it paid or took back, count for when
the session happened (its ``started_at``), not when they were written (gamification.0004):
existing entries whose session still exists get its start. The session is the reference of a
``study_session(_deleted)`` entry and the last part of a ``quest_reward(_revoked)`` one."""

from bson import ObjectId
from bson.errors import InvalidId
from django.db import migrations
from pymongo import UpdateOne

LEDGER = "gamification_pointsentry"
SESSIONS = "sessions_app_studysession"
STUDY_REASONS = ["study_session", "study_session_deleted", "quest_reward", "quest_reward_revoked"]
BATCH = 1000


def _session_id(reference: str):
    try:
        return ObjectId(reference.rsplit(":", 1)[-1])
    except InvalidId:
        return None


def _update(database, entries: list[dict]) -> None:
    session_ids = {_session_id(entry["reference"]) for entry in entries} - {None}
    started = {
        session["_id"]: session["started_at"]
        for session in database[SESSIONS].find({"_id": {"$in": list(session_ids)}}, {"started_at": 1})
    }
    updates = [
        UpdateOne({"_id": entry["_id"]}, {"$set": {"studied_at": started[session_id]}})
        for entry in entries
        if (session_id := _session_id(entry["reference"])) in started
    ]
    if updates:
        database[LEDGER].bulk_write(updates, ordered=False)


def studied_when_the_session_started(apps, schema_editor):
    database = schema_editor.connection.database
    batch = []
    for entry in database[LEDGER].find({"reason": {"$in": STUDY_REASONS}}, {"reference": 1}):
        batch.append(entry)
        if len(batch) == BATCH:
            _update(database, batch)
            batch = []
    if batch:
        _update(database, batch)


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0003_studysession_time_zone"),
        ("gamification", "0004_pointsentry_studied_at"),
    ]

    operations = [migrations.RunPython(studied_when_the_session_started, migrations.RunPython.noop)]
