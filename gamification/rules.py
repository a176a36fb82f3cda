"""The arithmetic of the game, with no database access. See docs/gamification.md.

Level L is reached at 50·L·(L−1) total points: the steps between levels are 100, 200, 300…
"""

from __future__ import annotations

import datetime
import math
import zoneinfo

POINTS_PER_MINUTE = 1


def paid_minutes(minutes: int, *, cap: int) -> int:
    """The minutes of one local day's ``minutes`` of study that pay points: at most ``cap``."""
    return min(minutes, cap)


def paid_days(days: dict, *, cap: int) -> dict:
    """``days`` (date -> (minutes, sessions)) with each day's minutes cut to what is paid: what
    badges and quests count. Sessions, and so study days and streaks, are not cut."""
    return {day: (paid_minutes(minutes, cap=cap), sessions) for day, (minutes, sessions) in days.items()}


def points_for_level(level: int) -> int:
    """Total points at which ``level`` is reached (level 1 at 0)."""
    return 50 * level * (level - 1)


def level_for_points(points: int) -> int:
    """The level a total of ``points`` has reached; 1 for zero or negative totals."""
    if points <= 0:
        return 1
    # Solve 50·L·(L−1) <= points for L, then correct the integer square root's rounding.
    level = max(1, (1 + math.isqrt(1 + 2 * points // 25)) // 2)
    while points_for_level(level + 1) <= points:
        level += 1
    while level > 1 and points_for_level(level) > points:
        level -= 1
    return level


def points_to_next_level(points: int) -> int:
    return points_for_level(level_for_points(points) + 1) - max(points, 0)


# Streaks --------------------------------------------------------------------------------

STREAK_RECORD_MILESTONES = (3, 7, 14, 30, 60, 100, 200, 365)


def longest_streak(study_days) -> int:
    """The longest run of consecutive calendar days in ``study_days`` (a set of dates)."""
    days = set(study_days)
    longest = 0
    for day in days:
        if day - datetime.timedelta(days=1) in days:
            continue  # not the first day of a run
        length = 1
        while day + datetime.timedelta(days=length) in days:
            length += 1
        longest = max(longest, length)
    return longest


def current_streak(study_days, *, today: datetime.date) -> int:
    """The run of study days that ends today, or yesterday if today has no session yet.

    A streak survives until a whole local day passes without a session.
    """
    days = set(study_days)
    end = today if today in days else today - datetime.timedelta(days=1)
    length = 0
    while end - datetime.timedelta(days=length) in days:
        length += 1
    return length


def current_streak_as_of(stored: int, *, last_study_date: datetime.date | None, today: datetime.date) -> int:
    """The current streak on ``today``, from what was stored at the user's last change.

    The stored streak is the run that ends on ``last_study_date`` (the latest study day), or 0.
    Nothing changes it until the user studies again, except time: it survives the next local
    day and is 0 once a whole local day has passed without a session.
    """
    if last_study_date is None or today - last_study_date > datetime.timedelta(days=1):
        return 0
    return stored


# Periods: a local calendar day, or an ISO week starting on Monday, in the user's time zone.


def period_bounds(period: str, *, today: datetime.date) -> tuple[datetime.date, datetime.date]:
    """First and last local date of the daily or weekly period that contains ``today``."""
    if period == "daily":
        return today, today
    if period == "weekly":
        monday = today - datetime.timedelta(days=today.weekday())
        return monday, monday + datetime.timedelta(days=6)
    raise ValueError(f"unknown period {period!r}")


def local_midnight(day: datetime.date, tz: zoneinfo.ZoneInfo) -> datetime.datetime:
    """The instant a local calendar day starts (DST-aware), in UTC."""
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=tz).astimezone(datetime.UTC)


def quest_metric(metric: str, days: dict, *, start: datetime.date, end: datetime.date) -> int:
    """A quest metric over the local dates start..end; ``days`` maps date -> (minutes, sessions)."""
    in_period = [totals for day, totals in days.items() if start <= day <= end]
    if metric == "minutes":
        return sum(minutes for minutes, _ in in_period)
    if metric == "sessions":
        return sum(sessions for _, sessions in in_period)
    if metric == "study_days":
        return sum(1 for _, sessions in in_period if sessions > 0)
    raise ValueError(f"unknown quest metric {metric!r}")
