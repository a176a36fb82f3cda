"""The rules of the game, driven through the study session services with an explicit clock."""

from __future__ import annotations

import datetime
import zoneinfo

import pytest

from gamification.models import Achievement, PointsEntry, QuestProgress, UserBadge
from gamification.selectors import current_streak_get, quest_list_for_user
from gamification.tests.factories import api_client_for, assert_points_invariant
from sessions_app.services import StudySessionRefused, study_session_delete, study_session_log
from sessions_app.tests.factories import make_user

pytestmark = pytest.mark.django_db

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
UTC = datetime.UTC


def at(tz, *args, fold=0) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=tz, fold=fold)


def log(user, started_at, *, minutes=30, subject="Maths", now=None):
    """Log a session; by default as it ends (``now`` = its end)."""
    now = now or started_at + datetime.timedelta(minutes=minutes)
    return study_session_log(
        user=user, subject=subject, duration_minutes=minutes, started_at=started_at, now=now
    ).session


def streaks(user) -> tuple[int, int]:
    user.refresh_from_db()
    return user.current_streak, user.longest_streak


def reasons(user) -> list[str]:
    return sorted(PointsEntry.objects.filter(user=user).values_list("reason", flat=True))


# Streaks ----------------------------------------------------------------------------------


def test_streak_counts_local_days_across_the_march_dst_switch():
    user = make_user(time_zone="America/New_York")
    # 23:30 local on Sat 7, Sun 8 (clocks jump at 02:00) and Mon 9 March 2026.
    for day in (7, 8, 9):
        log(user, at(NEW_YORK, 2026, 3, day, 23, 30), minutes=20)
    assert streaks(user) == (3, 3)
    # The same instants fall on UTC dates 8, 9 and 10 March: the local dates are what count.
    assert [s.local_date.day for s in user.study_sessions.order_by("started_at")] == [7, 8, 9]


def test_time_zone_decides_the_day_a_late_session_belongs_to():
    # 23:30 and 00:30 local in New York are two study days; the same instants in UTC are one.
    first, second = at(UTC, 2026, 3, 9, 3, 30), at(UTC, 2026, 3, 9, 4, 40)
    new_yorker, londoner = make_user(time_zone="America/New_York"), make_user(time_zone="UTC")
    for user in (new_yorker, londoner):
        log(user, first, minutes=20, now=second + datetime.timedelta(hours=1))
        log(user, second, minutes=20, now=second + datetime.timedelta(hours=1))
    assert streaks(new_yorker) == (2, 2)
    assert streaks(londoner) == (1, 1)


def test_streak_across_the_november_switch_and_a_25_hour_day():
    user = make_user(time_zone="America/New_York")
    log(user, at(NEW_YORK, 2026, 10, 31, 23, 30), minutes=20)
    log(user, at(NEW_YORK, 2026, 11, 1, 1, 30, fold=1), minutes=20)  # the second 01:30 (EST)
    log(user, at(NEW_YORK, 2026, 11, 2, 0, 15), minutes=20)
    assert streaks(user) == (3, 3)
    # The daily quest of the 25-hour day ends at the next local midnight, 05:00 UTC (EST).
    quests = quest_list_for_user(user=user, now=at(NEW_YORK, 2026, 11, 1, 12, 0))
    daily = next(q for q in quests if q["period"] == "daily")
    assert daily["period_ends_at"] == at(UTC, 2026, 11, 2, 5, 0)
    weekly = next(q for q in quests if q["period"] == "weekly")
    assert weekly["period_ends_at"] == at(UTC, 2026, 11, 2, 5, 0)  # Sunday 1 Nov ends ISO week 44


def test_streak_survives_a_day_without_a_session_until_a_whole_day_passes():
    user = make_user()
    log(user, at(UTC, 2026, 11, 1, 9, 0))
    log(user, at(UTC, 2026, 11, 2, 9, 0))
    # Logged on 3 Nov about 2 Nov: the streak is still alive (today has no session yet).
    log(user, at(UTC, 2026, 11, 2, 20, 0), now=at(UTC, 2026, 11, 3, 22, 0))
    assert streaks(user) == (2, 2)
    # 5 Nov: the whole of 3 and 4 Nov passed without a session, the streak starts again.
    log(user, at(UTC, 2026, 11, 5, 9, 0))
    assert streaks(user) == (1, 2)


def test_back_dated_session_fills_a_gap_and_deletion_splits_it_again():
    user = make_user()
    now = at(UTC, 2026, 11, 20, 18, 0)
    log(user, at(UTC, 2026, 11, 20, 9, 0), now=now)
    log(user, at(UTC, 2026, 11, 18, 9, 0), now=now)
    assert streaks(user) == (1, 1)
    middle = log(user, at(UTC, 2026, 11, 19, 9, 0), now=now)
    assert streaks(user) == (3, 3)
    study_session_delete(user=user, session_id=middle.pk, now=now)
    assert streaks(user) == (1, 1)  # both streaks derive from the set of remaining study days
    assert_points_invariant(user)


def test_back_dating_is_capped_at_7_days_after_the_end_and_the_future_is_refused():
    user = make_user()
    now = at(UTC, 2026, 11, 20, 18, 0)
    week = datetime.timedelta(days=7)
    with pytest.raises(StudySessionRefused, match="at most 7 days after it ended"):
        log(user, now - week - datetime.timedelta(minutes=30, seconds=1), now=now)
    with pytest.raises(StudySessionRefused, match="must have ended by now"):
        log(user, now - datetime.timedelta(minutes=28), now=now)
    log(user, now - week - datetime.timedelta(minutes=30), now=now)  # ended exactly 7 days ago
    assert streaks(user) == (1, 1)  # stored: the latest run, a day long
    assert current_streak_get(user=user, now=now) == 0  # shown: it ended a week ago


# Quests -----------------------------------------------------------------------------------


def test_daily_quest_reward_is_paid_once_and_taken_back_below_target():
    user = make_user()
    now = at(UTC, 2026, 11, 20, 18, 0)
    first = log(user, at(UTC, 2026, 11, 20, 8, 0), minutes=20, now=now)
    second = log(user, at(UTC, 2026, 11, 20, 9, 0), minutes=20, now=now)
    log(user, at(UTC, 2026, 11, 20, 10, 0), minutes=20, now=now)
    rewards = PointsEntry.objects.filter(
        user=user, reason="quest_reward", reference__startswith="daily_30_minutes"
    )
    assert rewards.count() == 1
    assert second.points_awarded == 20 + 20 + 10  # minutes, "30 minutes today", "2 sessions today"
    progress = QuestProgress.objects.get(user=user, quest_id="daily_30_minutes")
    assert (progress.progress, progress.completed, progress.reward_points) == (60, True, 20)
    # Down to 40 minutes: still complete, nothing taken back.
    study_session_delete(user=user, session_id=first.pk, now=now)
    assert not PointsEntry.objects.filter(user=user, reason="quest_reward_revoked").exists()
    # Down to 20 minutes in the still-open day: the reward goes back through the ledger.
    study_session_delete(user=user, session_id=second.pk, now=now)
    revoked = PointsEntry.objects.filter(user=user, reason="quest_reward_revoked")
    assert sorted(revoked.values_list("amount", flat=True)) == [-20, -10]
    progress.refresh_from_db()
    assert (progress.progress, progress.completed, progress.reward_points) == (20, False, 0)
    assert_points_invariant(user)
    user.refresh_from_db()
    assert user.points == 20  # the one remaining session's minutes
    # The achievement of completing it stays, like badges.
    assert Achievement.objects.filter(user=user, kind="quest_completed").count() == 2


def test_a_closed_periods_reward_is_not_taken_back():
    user = make_user()
    yesterday_evening = at(UTC, 2026, 11, 19, 20, 0)
    session = log(user, at(UTC, 2026, 11, 19, 9, 0), minutes=30, now=yesterday_evening)
    assert PointsEntry.objects.filter(user=user, reason="quest_reward").count() == 1
    study_session_delete(user=user, session_id=session.pk, now=at(UTC, 2026, 11, 20, 9, 0))
    assert not PointsEntry.objects.filter(user=user, reason="quest_reward_revoked").exists()
    user.refresh_from_db()
    assert user.points == 20  # the minutes went back, the closed day's reward stays
    assert_points_invariant(user)


def test_back_dated_sessions_count_only_toward_open_periods():
    user = make_user()
    log(user, at(UTC, 2026, 11, 16, 9, 0), minutes=40, now=at(UTC, 2026, 11, 18, 9, 0))
    assert not PointsEntry.objects.filter(
        user=user, reason="quest_reward", reference__startswith="daily"
    ).exists()
    weekly = QuestProgress.objects.get(user=user, quest_id="weekly_300_minutes")
    assert (weekly.period_start, weekly.progress) == (datetime.date(2026, 11, 16), 40)


def test_weekly_quest_study_on_5_days_within_one_iso_week():
    user = make_user(time_zone="Europe/Berlin")
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    # Sunday 15 Nov belongs to the previous ISO week; Mon 16 - Fri 20 Nov make five days.
    log(user, at(berlin, 2026, 11, 15, 10, 0), minutes=10, now=at(berlin, 2026, 11, 20, 20, 0))
    for day in (16, 17, 18, 19):
        log(user, at(berlin, 2026, 11, day, 10, 0), minutes=10, now=at(berlin, 2026, 11, 20, 20, 0))
    assert not PointsEntry.objects.filter(user=user, reference__startswith="weekly_5_days").exists()
    log(user, at(berlin, 2026, 11, 20, 10, 0), minutes=10, now=at(berlin, 2026, 11, 20, 20, 0))
    reward = PointsEntry.objects.get(user=user, reference__startswith="weekly_5_days")
    assert reward.amount == 100 and reward.reference.startswith("weekly_5_days:2026-11-16:")


# Badges, levels, achievements -------------------------------------------------------------


def test_badges_are_awarded_once_and_stay_after_deletion():
    user = make_user()
    now = at(UTC, 2026, 11, 20, 20, 0)
    first = log(user, at(UTC, 2026, 11, 20, 8, 0), minutes=60, now=now)
    assert set(UserBadge.objects.filter(user=user).values_list("badge_id", flat=True)) == {
        "first_session",
        "hours_1",
    }
    study_session_delete(user=user, session_id=first.pk, now=now)
    log(user, at(UTC, 2026, 11, 20, 9, 0), minutes=60, now=now)
    assert UserBadge.objects.filter(user=user).count() == 2
    assert Achievement.objects.filter(user=user, kind="badge_earned").count() == 2


def test_streak_badges_and_records():
    user = make_user()
    for day in range(1, 8):
        log(user, at(UTC, 2026, 11, day, 9, 0), minutes=5)
    badges = set(UserBadge.objects.filter(user=user).values_list("badge_id", flat=True))
    assert {"streak_3", "streak_7"} <= badges and "streak_30" not in badges
    records = set(
        Achievement.objects.filter(user=user, kind="streak_record").values_list("reference", flat=True)
    )
    assert records == {"streak:3", "streak:7"}


def test_variety_badge_compares_trimmed_casefolded_subjects():
    user = make_user()
    subjects = ["Physics", " physics ", "PHYSICS", "Chemistry", "Biology", "History"]
    for n, subject in enumerate(subjects):
        log(user, at(UTC, 2026, 11, 20, 8 + n, 0), minutes=5, subject=subject)
    assert not UserBadge.objects.filter(user=user, badge_id="variety_5").exists()  # 4 subjects so far
    log(user, at(UTC, 2026, 11, 20, 16, 0), minutes=5, subject="Geography")
    assert UserBadge.objects.filter(user=user, badge_id="variety_5").exists()


def test_level_follows_points_up_and_down_with_achievements_kept():
    user = make_user()
    now = at(UTC, 2026, 11, 20, 20, 0)
    session = log(user, at(UTC, 2026, 11, 20, 8, 0), minutes=300, now=now)
    user.refresh_from_db()
    assert user.points == 300 + 20 + 50  # minutes, daily 30 minutes, weekly 5 hours
    assert user.level == 3
    levels = set(Achievement.objects.filter(user=user, kind="level_up").values_list("reference", flat=True))
    assert levels == {"level:2", "level:3"}
    study_session_delete(user=user, session_id=session.pk, now=now)
    user.refresh_from_db()
    assert (user.points, user.level) == (0, 1)
    assert Achievement.objects.filter(user=user, kind="level_up").count() == 2
    assert_points_invariant(user)


def test_deleting_a_user_cascades_to_everything():
    user = make_user()
    log(user, at(UTC, 2026, 11, 20, 8, 0), minutes=90)
    user.delete()
    for model in (PointsEntry, UserBadge, QuestProgress, Achievement):
        assert not model.objects.exists()


def test_quests_endpoint_shows_progress_of_the_current_periods():
    user = make_user()
    client = api_client_for(user)
    client.post("/api/sessions/", {"subject": "Art", "duration_minutes": 12}, format="json")
    quests = {q["code"]: q for q in client.get("/api/quests/").json()}
    assert set(quests) == {"daily_30_minutes", "daily_2_sessions", "weekly_5_days", "weekly_300_minutes"}
    assert quests["daily_30_minutes"]["progress"] == 12 and not quests["daily_30_minutes"]["completed"]
    assert quests["weekly_5_days"]["progress"] == 1
    assert set(quests["weekly_5_days"]) == {
        "code",
        "title",
        "period",
        "target",
        "progress",
        "completed",
        "reward_points",
        "period_ends_at",
    }


def test_a_reward_changed_in_the_catalog_is_taken_back_as_paid():
    from gamification.models import Quest
    from gamification.services import catalog_cache_clear

    user = make_user()
    now = at(UTC, 2026, 11, 20, 18, 0)
    session = log(user, at(UTC, 2026, 11, 20, 8, 0), minutes=30, now=now)
    Quest.objects.filter(code="daily_30_minutes").update(reward_points=999)
    catalog_cache_clear()
    study_session_delete(user=user, session_id=session.pk, now=now)
    revoked = PointsEntry.objects.get(user=user, reason="quest_reward_revoked")
    assert revoked.amount == -20
    assert_points_invariant(user)
