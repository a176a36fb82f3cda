"""Pure date helpers: the user's local calendar date, and ISO week labels.

"The user's local today" has one home: :func:`local_today`. Every rule that counts days
(streaks, quests, stats, the demo's history) takes its dates from here. A study session keeps
the time zone it was logged in; :func:`today_in` is "today" in such a zone.
"""

from __future__ import annotations

import datetime
import zoneinfo

from django.utils import timezone


def date_in(time_zone: str, moment: datetime.datetime) -> datetime.date:
    """The calendar date in ``time_zone`` (an IANA name) at the aware instant ``moment``."""
    return moment.astimezone(zoneinfo.ZoneInfo(time_zone)).date()


def today_in(time_zone: str, now: datetime.datetime | None = None) -> datetime.date:
    """Today in ``time_zone``, as of ``now`` (default: Django's clock)."""
    return date_in(time_zone, now or timezone.now())


def local_date_at(user, moment: datetime.datetime) -> datetime.date:
    """The calendar date in ``user.time_zone`` at the aware instant ``moment``."""
    return date_in(user.time_zone, moment)


def local_today(user, now: datetime.datetime | None = None) -> datetime.date:
    """Today in the user's time zone, as of ``now`` (default: Django's clock)."""
    return today_in(user.time_zone, now)


def iso_week_label(day: datetime.date) -> str:
    """The ISO week of ``day``, as ``2026-W53``: weeks start on Monday, week 1 holds a Thursday."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"
