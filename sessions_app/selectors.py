"""Reads of study sessions: the user's history and the charts' statistics."""

from __future__ import annotations

import datetime
from collections import Counter

from django.db.models import QuerySet

from accounts.models import User
from gamification.selectors import study_range_get
from sessions_app.models import StudySession
from sessions_app.services import StudySessionNotFound, parse_session_id
from studymaster.dates import iso_week_label

MAX_STATS_DAYS = 366


def study_session_list(*, user: User) -> QuerySet[StudySession]:
    """The user's study sessions, newest start first (index user, -started_at)."""
    return StudySession.objects.filter(user=user).order_by("-started_at", "-id")


def study_session_get(*, user: User, session_id) -> StudySession:
    """One of the user's study sessions. Raises StudySessionNotFound for a malformed or foreign id."""
    try:
        return StudySession.objects.get(pk=parse_session_id(session_id), user=user)
    except StudySession.DoesNotExist:
        raise StudySessionNotFound(session_id) from None


def study_stats(*, user: User, date_from: datetime.date, date_to: datetime.date) -> dict:
    """Minutes per local day, per ISO week and per subject over date_from..date_to (inclusive).

    From the maintained per-day totals (one read, ``gamification.selectors.study_range_get``);
    days and weeks without study are reported as 0. Subjects are merged by subject key and shown
    in the spelling most of their sessions in the range used (ties: the first in code point order).
    """
    minutes_by_day, subject_items = study_range_get(user=user, date_from=date_from, date_to=date_to)
    by_day, by_week = [], {}
    day = date_from
    while day <= date_to:
        minutes = minutes_by_day.get(day, 0)
        by_day.append({"date": day.isoformat(), "minutes": minutes})
        week = iso_week_label(day)
        by_week[week] = by_week.get(week, 0) + minutes
        day += datetime.timedelta(days=1)
    subjects: dict[str, dict] = {}
    for item in subject_items:
        subject = subjects.setdefault(item["key"], {"minutes": 0, "spellings": Counter()})
        subject["minutes"] += item["minutes"]
        spellings = subject["spellings"]
        for text, count in item["spellings"]:
            spellings[text] += count
    by_subject = [
        {
            "subject": min(row["spellings"].items(), key=lambda pair: (-pair[1], pair[0]))[0],
            "minutes": row["minutes"],
        }
        for _, row in sorted(subjects.items(), key=lambda item: (-item[1]["minutes"], item[0]))
    ]
    return {
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "by_day": by_day,
        "by_week": [{"week": week, "minutes": minutes} for week, minutes in by_week.items()],
        "by_subject": by_subject,
    }
