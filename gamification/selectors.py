"""Reads of the game: ledger, badges, quests, achievements, leaderboard."""

from __future__ import annotations

import datetime
import zoneinfo

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet
from django.utils import timezone

from gamification import rules, totals
from gamification.models import (
    Achievement,
    Badge,
    PointsEntry,
    Quest,
    QuestProgress,
    StudyTotal,
    UserBadge,
    WeekPoints,
)
from studymaster.dates import local_today
from studymaster.db import db_date, mongo_call


def current_streak_get(*, user: AbstractBaseUser, now: datetime.datetime | None = None) -> int:
    """The user's current streak as of ``now`` in their time zone, from the user document alone.

    The one place that turns the stored streak into the one to show: 0 once a whole local
    day has passed since ``last_study_date``, with no write and no extra operation.
    """
    today = local_today(user, now)
    return rules.current_streak_as_of(user.current_streak, last_study_date=user.last_study_date, today=today)


def user_progress_get(*, user: AbstractBaseUser, now: datetime.datetime | None = None) -> dict:
    """The progress shown with the profile, read from the user document (no extra operation)."""
    return {
        "points": user.points,
        "level": user.level,
        "points_to_next_level": rules.points_to_next_level(user.points),
        "current_streak": current_streak_get(user=user, now=now),
        "longest_streak": user.longest_streak,
        "total_minutes": user.total_minutes,
        "session_count": user.session_count,
    }


def study_range_get(
    *, user: AbstractBaseUser, date_from: datetime.date, date_to: datetime.date
) -> tuple[dict[datetime.date, int], list[dict]]:
    """The maintained totals of the study days from ``date_from`` to ``date_to`` (local dates):
    minutes by study day, and the subject items (``{key, minutes, spellings}``; a key may come
    more than once), in one read of at most 13 documents for the 366 days stats allow, however
    long the history: the summary of each month the range covers whole, the month document of
    the others (``totals.month_reads``)."""
    keys = totals.month_reads(date_from, date_to, last_study_date=user.last_study_date)
    # No projection: the embedded server's projection of nested days cost four times the read.
    rows = mongo_call(StudyTotal._meta.db_table, "find", {"user_id": user.pk, "key": {"$in": keys}})
    return totals.range_totals(rows, date_from, date_to)


def points_entry_list(*, user: AbstractBaseUser) -> QuerySet[PointsEntry]:
    """The user's ledger, newest first (index user, -created_at)."""
    return PointsEntry.objects.filter(user=user).order_by("-created_at", "-id")


def achievement_list(*, user: AbstractBaseUser) -> QuerySet[Achievement]:
    return Achievement.objects.filter(user=user).order_by("-created_at", "-id")


def badge_catalog_for_user(*, user: AbstractBaseUser) -> list[dict]:
    """Every active badge, with whether and when the user earned it (2 reads)."""
    earned = dict(UserBadge.objects.filter(user=user).values_list("badge_id", "earned_at"))
    return [
        {
            "code": badge.code,
            "name": badge.name,
            "description": badge.description,
            "earned": badge.code in earned,
            "earned_at": earned.get(badge.code),
        }
        for badge in Badge.objects.filter(is_active=True)
    ]


def quest_list_for_user(*, user: AbstractBaseUser, now: datetime.datetime | None = None) -> list[dict]:
    """The active quests in their current periods (user's time zone), with the user's progress (2 reads)."""
    tz = zoneinfo.ZoneInfo(user.time_zone)
    today = local_today(user, now)
    quests = list(Quest.objects.filter(is_active=True))
    starts = {quest.code: rules.period_bounds(quest.period, today=today) for quest in quests}
    progress = {
        (row.quest_id, row.period_start): row
        for row in QuestProgress.objects.filter(
            user=user, period_start__in={start for start, _ in starts.values()}
        )
    }
    rows = []
    for quest in quests:
        start, end = starts[quest.code]
        record = progress.get((quest.code, start))
        value = record.progress if record else 0
        rows.append(
            {
                "code": quest.code,
                "title": quest.title,
                "period": quest.period,
                "target": quest.target,
                "progress": min(value, quest.target),
                "completed": bool(record and record.completed),
                "reward_points": quest.reward_points,
                "period_ends_at": rules.local_midnight(end + datetime.timedelta(days=1), tz),
            }
        )
    return rows


def leaderboard_list(*, period: str, now: datetime.datetime | None = None):
    """Users who did not opt out, highest points first, ties by username: ``{username, points}`` rows.

    ``all``: the points total on the user document (a queryset, paginated in the database).
    ``week``: the net points of study done since Monday 00:00 UTC of the current ISO week, by
    when it happened (the ledger's ``studied_at``), however late it was logged: the maintained
    ``WeekPoints`` of the week that are listed, with the username they keep (index
    ``weekpoints_board``), a list. Users without points in the period are left out. 2 reads for
    ``all`` (a count and the page), 1 for ``week``.
    """
    users = get_user_model().objects
    if period == "all":
        return (
            users.filter(leaderboard_opt_out=False, is_active=True, points__gt=0)
            .order_by("-points", "username")
            .values("username", "points")
        )
    week = totals.week_start(now or timezone.now())
    rows = mongo_call(
        WeekPoints._meta.db_table,
        "find",
        {"week_start": db_date(week), "listed": True, "points": {"$gt": 0}},
        projection={"_id": 0, "username": 1, "points": 1},
    )
    # Sorted here, where the workers have time to spare: the embedded server sorts in Python too.
    return sorted(
        rows,
        key=lambda row: (-row["points"], row["username"]),
    )
