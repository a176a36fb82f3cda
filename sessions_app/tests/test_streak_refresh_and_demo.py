"""Streaks end once a whole local day passes (refresh_streaks), and the demo data keeps every invariant."""

from __future__ import annotations

import datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import User
from gamification.models import Achievement, UserBadge
from gamification.tests.factories import assert_points_invariant
from sessions_app.demo_data import seed_demo
from sessions_app.models import StudySession
from sessions_app.services import study_streak_refresh
from sessions_app.tests.factories import log_session, make_user

pytestmark = pytest.mark.django_db


def test_refresh_ends_a_streak_after_a_whole_day_without_study():
    user = make_user()
    now = timezone.now()
    for days_ago in (4, 3):
        log_session(user, minutes=20, now=now - datetime.timedelta(days=days_ago))
    user.refresh_from_db()
    assert user.current_streak == 2
    assert study_streak_refresh(user=user, now=now) == (0, 2)
    user.refresh_from_db()
    assert (user.current_streak, user.longest_streak) == (0, 2)
    assert user.last_study_date == StudySession.objects.filter(user=user).latest("started_at").local_date


def test_refresh_streaks_command_reports_the_streaks_it_ended():
    stale, alive = make_user(), make_user()
    log_session(stale, minutes=20, now=timezone.now() - datetime.timedelta(days=3))
    log_session(alive, minutes=20)
    out = StringIO()
    call_command("refresh_streaks", stdout=out)
    assert out.getvalue().strip() == "1 streaks ended"
    alive.refresh_from_db()
    assert alive.current_streak == 1


def test_seed_demo_makes_learners_with_history_and_keeps_every_invariant():
    counts = seed_demo(users=4, seed=3)
    assert counts["users"] == 5
    assert counts["study sessions"] == StudySession.objects.count() > 20
    assert UserBadge.objects.exists() and Achievement.objects.filter(kind="level_up").exists()
    for user in User.objects.all():
        assert_points_invariant(user)
        assert user.session_count == StudySession.objects.filter(user=user).count()
        local_dates = StudySession.objects.filter(user=user).values_list("local_date", flat=True)
        assert user.last_study_date == max(local_dates, default=None), user.username
    assert User.objects.filter(last_study_date__isnull=False).count() >= 3
    assert User.objects.filter(leaderboard_opt_out=False).exists()
