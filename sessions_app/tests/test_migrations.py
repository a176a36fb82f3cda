"""The data migrations that give existing documents the fields the fair-play rules need."""

from __future__ import annotations

import datetime
import importlib
from types import SimpleNamespace

import pytest
from bson import ObjectId
from django.apps import apps
from django.db import connection

from sessions_app.tests.factories import make_user

pytestmark = pytest.mark.django_db


def _run(module: str, function: str) -> None:
    getattr(importlib.import_module(module), function)(apps, SimpleNamespace(connection=connection))


def test_existing_sessions_and_quest_periods_get_their_users_current_zone():
    tokyo, lima = make_user(time_zone="Asia/Tokyo"), make_user(time_zone="America/Lima")
    database = connection.database
    # As AddField left them: the schema default on every document.
    for collection in ("sessions_app_studysession", "gamification_questprogress"):
        database[collection].insert_many(
            [{"_id": ObjectId(), "user_id": user.pk, "time_zone": "UTC"} for user in (tokyo, lima, tokyo)]
        )

    _run("sessions_app.migrations.0003_studysession_time_zone", "give_sessions_their_users_zone")
    _run("gamification.migrations.0003_questprogress_time_zone", "give_progress_its_users_zone")

    for collection in ("sessions_app_studysession", "gamification_questprogress"):
        zones = sorted((str(doc["user_id"]), doc["time_zone"]) for doc in database[collection].find())
        assert zones == sorted(
            [(str(tokyo.pk), "Asia/Tokyo"), (str(tokyo.pk), "Asia/Tokyo"), (str(lima.pk), "America/Lima")]
        ), collection


def test_existing_points_entries_count_for_when_their_study_happened():
    user = make_user()
    database = connection.database
    started = datetime.datetime(2026, 11, 22, 18, 0)  # a Sunday
    written = datetime.datetime(2026, 11, 24, 9, 0)
    session_id, gone_id = ObjectId(), ObjectId()
    database["sessions_app_studysession"].insert_one(
        {"_id": session_id, "user_id": user.pk, "started_at": started}
    )
    entries = {
        "minutes": ("study_session", str(session_id)),
        "reward": ("quest_reward", f"weekly_300_minutes:2026-11-16:{session_id}"),
        "gone": ("study_session", str(gone_id)),  # its session was deleted since
        "adjustment": ("admin_adjustment", "3f2a9c"),
    }
    ids = {}
    for name, (reason, reference) in entries.items():
        ids[name] = (
            database["gamification_pointsentry"]
            .insert_one(
                {
                    "user_id": user.pk,
                    "amount": 1,
                    "reason": reason,
                    "reference": reference,
                    "created_at": written,
                }
            )
            .inserted_id
        )

    _run("gamification.migrations.0004_pointsentry_studied_at", "studied_when_written")
    _run("sessions_app.migrations.0004_points_studied_at", "studied_when_the_session_started")

    studied = {
        name: database["gamification_pointsentry"].find_one({"_id": ids[name]})["studied_at"] for name in ids
    }
    assert studied == {"minutes": started, "reward": started, "gone": written, "adjustment": written}


def test_the_totals_of_existing_history_are_filled_in():
    from gamification.invariants import totals_check
    from gamification.models import StudyTotal, WeekPoints
    from sessions_app.models import StudySession
    from sessions_app.tests.factories import log_session

    users = [make_user(), make_user(time_zone="Asia/Tokyo")]
    for user in users:
        for days_ago in (6, 5, 3):
            log_session(user, minutes=40, ago=datetime.timedelta(days=days_ago))
    # As the code before the totals left them: no totals, and a streak stored as 0 once it ended.
    StudyTotal.objects.all().delete()
    WeekPoints.objects.all().delete()
    type(users[0]).objects.filter(pk=users[0].pk).update(current_streak=0)
    assert len(totals_check(connection.database, sessions_model=StudySession).off) == 2

    _run("sessions_app.migrations.0006_fill_study_totals", "fill_study_totals")

    assert totals_check(connection.database, sessions_model=StudySession).off == []
    users[0].refresh_from_db()
    assert (users[0].current_streak, users[0].longest_streak, users[0].session_count) == (1, 2, 3)


def test_existing_week_points_get_their_users_listing():
    from gamification.models import WeekPoints
    from sessions_app.tests.factories import log_session

    shown, hidden, gone = make_user(), make_user(leaderboard_opt_out=True), make_user()
    for user in (shown, hidden, gone):
        log_session(user, minutes=30, ago=datetime.timedelta(hours=2))
    type(gone).objects.filter(pk=gone.pk).update(is_active=False)
    # As the code before the listing left them: the week points alone.
    connection.database[WeekPoints._meta.db_table].update_many({}, {"$unset": {"username": 1, "listed": 1}})

    _run("gamification.migrations.0007_week_points_listing", "copy_listing")

    rows = {row.user_id: (row.username, row.listed) for row in WeekPoints.objects.all()}
    assert rows == {
        shown.pk: (shown.username, True),
        hidden.pk: (hidden.username, False),
        gone.pk: (gone.username, False),
    }


def test_existing_month_documents_get_their_summaries():
    from gamification.invariants import totals_check
    from gamification.models import StudyTotal
    from sessions_app.models import StudySession
    from sessions_app.tests.factories import log_session

    user = make_user()
    for days_ago in (6, 3, 2):
        log_session(user, minutes=25, ago=datetime.timedelta(days=days_ago))
    # As the code before the summaries left them: the month documents alone.
    StudyTotal.objects.filter(key__startswith="monthsum:").delete()
    assert totals_check(connection.database, sessions_model=StudySession).drifted == {"monthsum": 1}

    _run("gamification.migrations.0008_month_summaries", "add_month_summaries")

    assert totals_check(connection.database, sessions_model=StudySession).off == []
    assert (
        StudyTotal.objects.filter(key__startswith="monthsum:").count()
        == StudyTotal.objects.filter(key__startswith="month:").count()
    )
