"""The current streak shown by GET /api/me/ is correct as of now, with no write in between.

The clock is Django's ``timezone.now``, patched to fixed instants: the API, the services and
the selectors all read it. Access tokens are checked against the real clock, so they stay valid.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
from unittest import mock

import pytest
from django.db import connection

from accounts.models import User
from gamification.tests.factories import api_client_for, make_user
from sessions_app.tests.factories import log_session

pytestmark = pytest.mark.django_db

UTC = datetime.UTC


def utc(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=UTC)


@contextlib.contextmanager
def clock(moment: datetime.datetime):
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def me(user: User, moment: datetime.datetime) -> dict:
    with clock(moment):
        response = api_client_for(user).get("/api/me/")
    assert response.status_code == 200
    return response.json()


def log_via_api(user: User, started_at: datetime.datetime, *, subject: str = "Maths") -> str:
    with clock(started_at + datetime.timedelta(minutes=45)):
        response = api_client_for(user).post(
            "/api/sessions/",
            {"subject": subject, "duration_minutes": 30, "started_at": started_at.isoformat()},
            format="json",
        )
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def test_a_streak_lives_through_the_next_local_day_and_ends_after_it():
    user = make_user(time_zone="UTC")
    log_via_api(user, utc(2026, 3, 8, 18))
    log_via_api(user, utc(2026, 3, 9, 18))
    assert me(user, utc(2026, 3, 9, 20))["current_streak"] == 2
    # The 10th has no session yet: studied yesterday, so the streak is kept all day.
    assert me(user, utc(2026, 3, 10, 0, 0, 1))["current_streak"] == 2
    assert me(user, utc(2026, 3, 10, 23, 59, 59))["current_streak"] == 2
    # The whole of the 10th passed without a session.
    body = me(user, utc(2026, 3, 11, 0, 0, 1))
    assert (body["current_streak"], body["longest_streak"]) == (0, 2)
    assert me(user, utc(2026, 3, 20))["current_streak"] == 0
    # Shown as of now, not written: the stored value is still the one of the last change.
    user.refresh_from_db()
    assert (user.current_streak, user.last_study_date) == (2, datetime.date(2026, 3, 9))


def test_the_users_time_zone_decides_at_the_same_instant():
    # One session at 2026-03-08 20:00 UTC: Sunday 13:00 in Los Angeles (PDT, UTC-7),
    # Monday 09:00 in Auckland (NZDT, UTC+13).
    auckland = make_user(time_zone="Pacific/Auckland")
    los_angeles = make_user(time_zone="America/Los_Angeles")
    for user in (auckland, los_angeles):
        log_via_api(user, utc(2026, 3, 8, 20))
    assert User.objects.get(pk=auckland.pk).last_study_date == datetime.date(2026, 3, 9)
    assert User.objects.get(pk=los_angeles.pk).last_study_date == datetime.date(2026, 3, 8)
    # 2026-03-10 10:00 UTC is the 10th in both zones (23:00 in Auckland, 03:00 in Los Angeles):
    # Auckland studied yesterday; Los Angeles let the whole of the 9th pass.
    moment = utc(2026, 3, 10, 10)
    assert me(auckland, moment)["current_streak"] == 1
    assert me(los_angeles, moment)["current_streak"] == 0
    # Six hours earlier it was still the 9th in Los Angeles.
    assert me(los_angeles, utc(2026, 3, 10, 4))["current_streak"] == 1
    # An hour later it is the 11th in Auckland.
    assert me(auckland, utc(2026, 3, 10, 11))["current_streak"] == 0


def test_deleting_the_latest_session_moves_the_last_study_date_back():
    user = make_user(time_zone="UTC")
    ids = {day: log_via_api(user, utc(2026, 3, day, 9)) for day in (7, 9, 10)}
    client = api_client_for(user)
    moment = utc(2026, 3, 10, 12)
    assert me(user, moment)["current_streak"] == 2  # the 9th and the 10th

    def delete(day: int) -> User:
        with clock(moment):
            assert client.delete(f"/api/sessions/{ids[day]}/").status_code == 204
        return User.objects.get(pk=user.pk)

    assert delete(10).last_study_date == datetime.date(2026, 3, 9)
    assert me(user, moment)["current_streak"] == 1  # the 9th was yesterday
    assert delete(9).last_study_date == datetime.date(2026, 3, 7)
    assert me(user, moment)["current_streak"] == 0  # the 8th passed without a session
    assert delete(7).last_study_date is None
    body = me(user, moment)
    assert (body["current_streak"], body["longest_streak"], body["session_count"]) == (0, 0, 0)


def test_a_back_dated_session_does_not_move_the_last_study_date_back():
    user = make_user(time_zone="UTC")
    log_via_api(user, utc(2026, 3, 10, 9))
    log_via_api(user, utc(2026, 3, 5, 9))
    assert User.objects.get(pk=user.pk).last_study_date == datetime.date(2026, 3, 10)
    assert me(user, utc(2026, 3, 11, 12))["current_streak"] == 1


def test_the_profile_read_costs_no_more_for_the_derived_streak(django_assert_max_num_queries):
    user = make_user(time_zone="UTC")
    log_via_api(user, utc(2026, 3, 9, 9))
    client = api_client_for(user)
    with clock(utc(2026, 3, 12)), django_assert_max_num_queries(1):  # authentication only
        assert client.get("/api/me/").json()["current_streak"] == 0


def test_the_migration_backfills_the_last_study_date_from_the_sessions():
    migration = importlib.import_module("accounts.migrations.0005_user_last_study_date_leaderboard_index")
    now = datetime.datetime.now(UTC)
    studied, idle = make_user(time_zone="Asia/Tokyo"), make_user()
    log_session(studied, minutes=20, now=now - datetime.timedelta(days=2))
    last_session = log_session(studied, minutes=20, now=now - datetime.timedelta(hours=1))
    User.objects.filter(pk=studied.pk).update(last_study_date=None)  # as before the migration
    migration.backfill_last_study_date(None, mock.Mock(connection=connection))
    assert User.objects.get(pk=studied.pk).last_study_date == last_session.local_date
    assert User.objects.get(pk=idle.pk).last_study_date is None
