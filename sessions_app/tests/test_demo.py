"""The demo data keeps every invariant."""

from __future__ import annotations

import pytest

from accounts.models import User
from gamification.models import Achievement, UserBadge
from gamification.tests.factories import assert_points_invariant
from sessions_app.demo_data import seed_demo
from sessions_app.models import StudySession

pytestmark = pytest.mark.django_db


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
