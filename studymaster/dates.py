"""Pure date helpers: the user's local calendar date, and ISO week labels.

"The user's local today" has one home: :func:`local_today`. Every rule that counts days
(streaks, quests, stats, the demo's history) takes its dates from here.
"""

from __future__ import annotations

import datetime
import zoneinfo

from django.utils import timezone


def local_date_at(user, moment: datetime.datetime) -> datetime.date:
    """The calendar date in ``user.time_zone`` (an IANA name) at the aware instant ``moment``."""
    return moment.astimezone(zoneinfo.ZoneInfo(user.time_zone)).date()


def local_today(user, now: datetime.datetime | None = None) -> datetime.date:
    """Today in the user's time zone, as of ``now`` (default: Django's clock)."""
    return local_date_at(user, now or timezone.now())


def iso_week_label(day: datetime.date) -> str:
    """The ISO week of ``day``, as ``2026-W53``: weeks start on Monday, week 1 holds a Thursday."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"
