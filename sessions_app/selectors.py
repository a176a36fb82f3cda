"""Reads of study sessions: the user's history and the charts' statistics."""

from __future__ import annotations

import datetime

from django.db.models import QuerySet

from accounts.models import User
from sessions_app.models import StudySession
from sessions_app.services import StudySessionNotFound, parse_session_id
from studymaster.dates import iso_week_label
from studymaster.db import db_date, mongo_call

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

    One aggregation (index user, local_date); days and weeks without study are reported as 0.
    """
    pipeline = [
        {
            "$match": {
                "user_id": user.pk,
                "local_date": {"$gte": db_date(date_from), "$lte": db_date(date_to)},
            }
        },
        {"$sort": {"started_at": -1}},
        {
            "$facet": {
                "by_day": [{"$group": {"_id": "$local_date", "minutes": {"$sum": "$duration_minutes"}}}],
                "by_subject": [
                    # Shown with the spelling of the most recent session of that subject.
                    {
                        "$group": {
                            "_id": "$subject_key",
                            "subject": {"$first": "$subject"},
                            "minutes": {"$sum": "$duration_minutes"},
                        }
                    },
                ],
            }
        },
    ]
    [result] = list(mongo_call(StudySession._meta.db_table, "aggregate", pipeline))
    minutes_by_day = {row["_id"].date(): row["minutes"] for row in result["by_day"]}
    by_day, by_week = [], {}
    day = date_from
    while day <= date_to:
        minutes = minutes_by_day.get(day, 0)
        by_day.append({"date": day.isoformat(), "minutes": minutes})
        week = iso_week_label(day)
        by_week[week] = by_week.get(week, 0) + minutes
        day += datetime.timedelta(days=1)
    by_subject = sorted(result["by_subject"], key=lambda row: (-row["minutes"], row["_id"]))
    return {
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "by_day": by_day,
        "by_week": [{"week": week, "minutes": minutes} for week, minutes in by_week.items()],
        "by_subject": [{"subject": row["subject"], "minutes": row["minutes"]} for row in by_subject],
    }
