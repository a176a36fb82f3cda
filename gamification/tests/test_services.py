"""The game's services, called directly; above all ``study_change_record``, the contract with sessions_app."""

from __future__ import annotations

import datetime

import pytest
from django.db import IntegrityError
from django.utils import timezone

from gamification import services
from gamification.models import Achievement, Badge, PointsEntry, Quest, QuestProgress, UserBadge
from gamification.services import GamificationError, StudyChange, points_adjust, study_change_record
from gamification.tests.factories import (
    assert_points_invariant,
    deletion_of,
    ledger_sum,
    make_user,
    study_change,
)
from studymaster.dates import local_today
from studymaster.db import run_in_transaction

pytestmark = pytest.mark.django_db


def _record(user, change: StudyChange, now=None):
    """As sessions_app calls it: inside the transaction that also writes the study session."""
    now = now or timezone.now()
    return run_in_transaction(lambda: study_change_record(user=user, change=change, now=now))


def _quest(user, code: str) -> QuestProgress:
    return QuestProgress.objects.get(user=user, quest_id=code)


def _achievements(user) -> set[str]:
    return set(Achievement.objects.filter(user=user).values_list("reference", flat=True))


# -- study_change_record -------------------------------------------------------------------------
def test_a_logged_session_pays_points_totals_streaks_quests_badges_and_achievements():
    user = make_user()
    today = local_today(user)
    change = study_change(local_date=today, minutes=45)

    outcome = _record(user, change)

    # 45 for the minutes, 20 for the daily 30-minute quest; level 2 starts at 100.
    assert (outcome.points, outcome.level, outcome.badges) == (65, 1, ["first_session"])
    user.refresh_from_db()
    assert (user.points, user.total_minutes, user.session_count) == (65, 45, 1)
    assert (user.current_streak, user.longest_streak, user.last_study_date) == (1, 1, today)
    assert sorted(PointsEntry.objects.filter(user=user).values_list("reason", "amount")) == [
        ("quest_reward", 20),
        ("study_session", 45),
    ]
    assert PointsEntry.objects.get(user=user, reason="study_session").reference == change.session_id
    daily = _quest(user, "daily_30_minutes")
    assert (daily.progress, daily.completed, daily.reward_points) == (45, True, 20)
    assert _quest(user, "weekly_300_minutes").progress == 45
    assert _quest(user, "daily_2_sessions").completed is False
    assert list(UserBadge.objects.filter(user=user).values_list("badge_id", flat=True)) == ["first_session"]
    assert _achievements(user) == {"badge:first_session", f"quest:daily_30_minutes:{today.isoformat()}"}
    assert_points_invariant(user)


def test_a_deletion_takes_back_its_points_and_open_rewards_but_not_badges():
    user = make_user()
    today = local_today(user)
    logged = study_change(local_date=today, minutes=45)
    _record(user, logged)

    outcome = _record(user, deletion_of(logged))

    assert (outcome.points, outcome.badges) == (-65, [])
    user.refresh_from_db()
    assert (user.points, user.total_minutes, user.session_count, user.current_streak) == (0, 0, 0, 0)
    assert user.last_study_date is None
    daily = _quest(user, "daily_30_minutes")
    assert (daily.progress, daily.completed, daily.reward_points) == (0, False, 0)
    assert UserBadge.objects.filter(user=user, badge_id="first_session").exists()  # a badge stays
    assert set(PointsEntry.objects.filter(user=user).values_list("reason", flat=True)) == {
        "study_session",
        "study_session_deleted",
        "quest_reward",
        "quest_reward_revoked",
    }
    assert_points_invariant(user)


def test_the_same_change_twice_never_pays_twice():
    user = make_user()
    change = study_change(local_date=local_today(user), minutes=20)
    _record(user, change)
    with pytest.raises(IntegrityError):
        _record(user, change)
    user.refresh_from_db()
    assert user.points == ledger_sum(user) == 20


def test_quests_count_only_periods_that_are_still_open():
    user = make_user()
    last_week = local_today(user) - datetime.timedelta(days=8)
    change = study_change(local_date=last_week, minutes=60)

    outcome = _record(user, change)

    assert outcome.points == 60  # the minutes only: last week's quests are closed
    assert not QuestProgress.objects.filter(user=user).exists()
    assert set(outcome.badges) == {"first_session", "hours_1"}


def test_a_third_day_in_a_row_records_the_streak_and_its_badge():
    user = make_user()
    today = local_today(user)
    for days_ago in (2, 1):
        _record(user, study_change(local_date=today - datetime.timedelta(days=days_ago), minutes=20))

    outcome = _record(user, study_change(local_date=today, minutes=20))

    assert "streak_3" in outcome.badges
    assert "streak:3" in _achievements(user)
    user.refresh_from_db()
    assert (user.current_streak, user.longest_streak, user.session_count) == (3, 3, 3)


def test_a_fifth_subject_earns_the_variety_badge():
    user = make_user()
    today = local_today(user)
    for subject in ("Mathematics", "Physics", "History", "mathematics ", "Spanish"):
        assert (
            "variety_5"
            not in _record(user, study_change(local_date=today, minutes=10, subject=subject)).badges
        )
    assert "variety_5" in _record(user, study_change(local_date=today, minutes=10, subject="Music")).badges


def test_a_day_pays_for_at_most_the_daily_cap_of_its_minutes(settings):
    settings.STUDY_DAILY_CAP_MINUTES = 100
    user = make_user()
    today = local_today(user)
    first = study_change(local_date=today, minutes=80)
    assert _record(user, first).minutes_unpaid == 0
    second = study_change(local_date=today, minutes=50)

    outcome = _record(user, second)

    # 20 of its 50 minutes fit under the cap; the quests' rewards came with the first session
    # (30 minutes today) and this one (2 sessions today).
    assert (outcome.points, outcome.minutes_unpaid) == (20 + 10, 30)
    assert (
        PointsEntry.objects.get(user=user, reference=second.session_id, reason="study_session").amount == 20
    )
    user.refresh_from_db()
    assert (user.points, user.total_minutes, user.session_count) == (80 + 20 + 20 + 10, 130, 2)
    assert_points_invariant(user)


def test_a_session_wholly_over_the_cap_pays_nothing_and_writes_no_ledger_entry(settings):
    settings.STUDY_DAILY_CAP_MINUTES = 60
    user = make_user()
    today = local_today(user)
    _record(user, study_change(local_date=today, minutes=60))
    over = study_change(local_date=today, minutes=45)
    outcome = _record(user, over)
    assert (outcome.points, outcome.minutes_unpaid) == (10, 45)  # "2 sessions today" only
    assert not PointsEntry.objects.filter(user=user, reference=over.session_id).exists()
    # Unpaid minutes are history (the totals, the streak), not progress towards badges.
    user.refresh_from_db()
    assert (user.total_minutes, user.current_streak) == (105, 1)
    assert not UserBadge.objects.filter(user=user, badge_id="hours_10").exists()


def test_deleting_a_session_re_pays_the_days_other_minutes_up_to_the_cap(settings):
    settings.STUDY_DAILY_CAP_MINUTES = 100
    user = make_user()
    today = local_today(user)
    first = study_change(local_date=today, minutes=100)
    _record(user, first)
    _record(user, study_change(local_date=today, minutes=70))  # 0 minutes paid

    outcome = _record(user, deletion_of(first))

    # 170 minutes paid 100; the 70 that remain are all paid, so 30 go back, and "2 sessions
    # today" is no longer done (10).
    assert outcome.points == -30 - 10
    assert PointsEntry.objects.get(user=user, reason="study_session_deleted").amount == -30
    user.refresh_from_db()
    assert (user.points, user.total_minutes) == (70 + 20, 70)
    assert_points_invariant(user)


def test_quests_count_only_the_paid_minutes(settings):
    settings.STUDY_DAILY_CAP_MINUTES = 20
    user = make_user()
    outcome = _record(user, study_change(local_date=local_today(user), minutes=45))
    assert (outcome.points, outcome.minutes_unpaid) == (20, 25)  # no "30 minutes today" reward
    assert _quest(user, "daily_30_minutes").progress == 20


# Wednesday 25 Nov, 15:00 UTC: already Thursday 05:00 at UTC+14, still Wednesday 03:00 at UTC-12.
WEDNESDAY = datetime.date(2026, 11, 25)
WEDNESDAY_AFTERNOON_UTC = datetime.datetime(2026, 11, 25, 15, 0, tzinfo=datetime.UTC)
PLUS_14, MINUS_12 = "Pacific/Kiritimati", "Etc/GMT+12"


def _wednesday(minutes: int, time_zone: str) -> StudyChange:
    """Logging ``minutes`` on (local) Wednesday in ``time_zone``."""
    return study_change(local_date=WEDNESDAY, minutes=minutes, time_zone=time_zone)


def test_whether_a_reward_goes_back_is_decided_in_the_zone_it_was_earned_in():
    now = WEDNESDAY_AFTERNOON_UTC
    user = make_user(time_zone=MINUS_12)
    # 20 minutes on Wednesday at UTC+14, logged before that day ended there...
    early = _wednesday(20, PLUS_14)
    _record(user, early, now=now - datetime.timedelta(hours=6))
    # ...and 20 more on Wednesday at UTC-12, which complete the daily quests there.
    late = _wednesday(20, MINUS_12)
    assert _record(user, late, now=now).points == 20 + 20 + 10
    daily = _quest(user, "daily_30_minutes")
    assert (daily.reward_points, daily.time_zone) == (20, MINUS_12)

    # Deleting the first: its own zone's Wednesday is over, but the rewards' (UTC-12) is not.
    assert _record(user, deletion_of(early), now=now).points == -20 - 20 - 10

    revoked = PointsEntry.objects.filter(user=user, reason="quest_reward_revoked")
    assert sorted(revoked.values_list("amount", flat=True)) == [-20, -10]
    assert_points_invariant(user)


def test_a_reward_earned_in_a_zone_where_the_period_has_closed_stays():
    now = WEDNESDAY_AFTERNOON_UTC
    user = make_user(time_zone=MINUS_12)
    logged = _wednesday(30, PLUS_14)
    assert _record(user, logged, now=now - datetime.timedelta(hours=6)).points == 30 + 20
    # Deleted once Wednesday has ended at UTC+14, although it is still Wednesday in the user's zone.
    assert _record(user, deletion_of(logged), now=now).points == -30
    assert not PointsEntry.objects.filter(user=user, reason="quest_reward_revoked").exists()
    assert_points_invariant(user)


def test_a_period_reached_again_while_it_holds_its_reward_pays_nothing_more():
    # The reward kept (its period closed where it was earned), then the same local date reached
    # again in a zone where that day is still open: paid once all the same.
    now = WEDNESDAY_AFTERNOON_UTC
    user = make_user(time_zone=MINUS_12)
    logged = _wednesday(30, PLUS_14)
    _record(user, logged, now=now - datetime.timedelta(hours=6))
    _record(user, deletion_of(logged), now=now)
    assert _record(user, _wednesday(30, MINUS_12), now=now).points == 30
    assert PointsEntry.objects.filter(user=user, reason="quest_reward").count() == 1
    assert_points_invariant(user)


# -- the other services ----------------------------------------------------------------------------
def test_points_award_on_its_own_commits_the_entry_and_the_level_up():
    user = make_user()
    entry = services.points_award(
        user=user, amount=320, reason=PointsEntry.Reason.QUEST_REWARD, reference="bonus:1"
    )
    assert entry.pk is not None
    user.refresh_from_db()
    assert (user.points, user.level) == (320, 3)
    assert {"level:2", "level:3"} <= _achievements(user)
    assert_points_invariant(user)


def test_a_change_composed_on_stale_progress_is_composed_again_on_what_is_stored():
    """The user object at hand is older than the stored progress (another process changed it):
    the write sees the version moved, writes nothing, and the change is made again on the
    stored progress, so no level or points are computed from the stale copy."""
    from accounts.models import User

    user = make_user()
    stale = User.objects.get(pk=user.pk)
    services.points_award(user=user, amount=90, reason=PointsEntry.Reason.QUEST_REWARD, reference="a")
    services.points_award(user=stale, amount=20, reason=PointsEntry.Reason.QUEST_REWARD, reference="b")
    stored = User.objects.get(pk=user.pk)
    assert (stored.points, stored.level, stored.progress_version) == (110, 2, 2)
    # The object that made the change now holds what is stored, for the next one.
    assert (stale.points, stale.level, stale.progress_version) == (110, 2, 2)
    assert "level:2" in _achievements(user)
    assert_points_invariant(stored)


def test_a_change_of_progress_inside_a_transaction_reads_and_writes_in_it():
    user = make_user()
    run_in_transaction(
        lambda: services.points_award(
            user=user, amount=5, reason=PointsEntry.Reason.QUEST_REWARD, reference="c"
        )
    )
    user.refresh_from_db()
    assert (user.points, user.progress_version) == (5, 1)


def test_points_adjust_writes_a_ledger_entry_and_keeps_the_invariant():
    user = make_user()
    entry = points_adjust(user=user, amount=150, note=" welcome bonus ", staff_username="admin")
    assert (entry.reason, entry.note) == ("admin_adjustment", "admin: welcome bonus")
    user.refresh_from_db()
    assert (user.points, user.level) == (150, 2)
    points_adjust(user=user, amount=-200, note="correction", staff_username="admin")
    user.refresh_from_db()
    assert (user.points, user.level) == (-50, 1)
    assert_points_invariant(user)


@pytest.mark.parametrize(
    ("amount", "note", "field"),
    [(0, "nothing", "amount"), (services.MAX_ADJUSTMENT + 1, "too much", "amount"), (5, "  ", "note")],
)
def test_points_adjust_refuses_naming_the_field(amount, note, field):
    user = make_user()
    with pytest.raises(GamificationError) as refused:
        points_adjust(user=user, amount=amount, note=note, staff_username="admin")
    assert (refused.value.field, refused.value.status, refused.value.code) == (field, 400, "invalid")
    assert not PointsEntry.objects.filter(user=user).exists()


def test_badge_award_is_once_per_user_and_badge():
    user = make_user()
    badge = Badge.objects.get(code="hours_10")
    services.badge_award(user=user, badge=badge)
    services.badge_award(user=user, badge=badge)
    assert UserBadge.objects.filter(user=user, badge=badge).count() == 1
    assert Achievement.objects.filter(user=user, reference="badge:hours_10").count() == 1


def test_a_quest_pays_on_completion_and_takes_back_what_it_paid():
    user = make_user()
    quest = Quest.objects.get(code="daily_30_minutes")
    today = local_today(user)
    record = {
        "user": user,
        "quest": quest,
        "period_start": today,
        "period_end": today,
        "time_zone": "UTC",
        "studied_at": timezone.now(),
    }
    paid = services.quest_progress_record(
        **record, progress_before=0, progress_after=30, held=None, cause="s1"
    )
    assert paid == 20
    progress = _quest(user, "daily_30_minutes")
    assert (progress.reward_points, progress.time_zone) == (20, "UTC")
    # Reached again while the period holds its reward: nothing more.
    again = services.quest_progress_record(
        **record, progress_before=10, progress_after=40, held=services.RewardHeld(20, "UTC"), cause="s3"
    )
    assert again == 0
    quest.reward_points = 999  # the catalog changed since: what was paid goes back, not the new reward
    taken_back = services.quest_progress_record(
        **record, progress_before=30, progress_after=10, held=services.RewardHeld(20, "UTC"), cause="s2"
    )
    assert taken_back == -20
    progress.refresh_from_db()
    assert (progress.progress, progress.completed, progress.reward_points) == (10, False, 0)
    assert_points_invariant(user)


def test_catalog_ensure_restores_missing_codes_and_keeps_edits():
    Badge.objects.filter(code="hours_100").delete()
    Badge.objects.filter(code="hours_10").update(name="Ten hours, renamed")
    services.catalog_ensure()
    assert Badge.objects.filter(code="hours_100").exists()
    assert Badge.objects.get(code="hours_10").name == "Ten hours, renamed"
