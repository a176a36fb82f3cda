"""The data migrations that give existing documents the fields the fair-play rules need."""

from __future__ import annotations

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
