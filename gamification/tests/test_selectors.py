"""The game's reads, called directly."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from gamification.selectors import current_streak_get, user_progress_get
from gamification.tests.factories import make_user, record_study

pytestmark = pytest.mark.django_db


def test_user_progress_get_reads_the_user_document_only(django_assert_num_queries):

    user = make_user()
    record_study(user, minutes=130, ago=datetime.timedelta(hours=3))
    user.refresh_from_db()
    with django_assert_num_queries(0):
        progress = user_progress_get(user=user)
    assert progress["points"] == user.points >= 130
    assert progress["level"] == 2 and progress["points_to_next_level"] == 300 - user.points
    assert (progress["total_minutes"], progress["session_count"], progress["current_streak"]) == (130, 1, 1)


def test_the_current_streak_shown_ends_once_a_whole_local_day_passes():
    user = make_user(time_zone="Asia/Tokyo")
    # The midweek clock (conftest) is Wednesday 15:00 UTC, midnight in Tokyo: this session was on
    # Wednesday there, so the streak survives Thursday and ends when Friday begins.
    record_study(user, minutes=20, ago=datetime.timedelta(hours=1))
    user.refresh_from_db()
    now = timezone.now()
    assert current_streak_get(user=user) == 1
    assert current_streak_get(user=user, now=now + datetime.timedelta(hours=23, minutes=59)) == 1
    assert current_streak_get(user=user, now=now + datetime.timedelta(days=1)) == 0
