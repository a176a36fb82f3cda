"""Test data builders for study sessions: logged through the service, so every rule applies."""

from __future__ import annotations

import datetime

from bson import ObjectId
from django.utils import timezone

from accounts.models import User
from gamification.models import PointsEntry
from gamification.services import study_totals_rewrite
from gamification.tests.factories import api_client_for, make_user  # noqa: F401 - re-exported
from sessions_app.models import StudySession
from sessions_app.services import study_session_log


def log_session(
    user: User,
    *,
    minutes: int = 30,
    subject: str = "Mathematics",
    started_at: datetime.datetime | None = None,
    ago: datetime.timedelta | None = None,
    now: datetime.datetime | None = None,
) -> StudySession:
    now = now or timezone.now()
    if started_at is None:
        started_at = now - (ago if ago is not None else datetime.timedelta(minutes=minutes))
    return study_session_log(
        user=user, subject=subject, duration_minutes=minutes, started_at=started_at, now=now
    ).session


SUBJECTS = ("Mathematics", "Physics", "History", "Spanish", "Computer science")


def history_in_bulk(
    user: User,
    *,
    sessions: int,
    last_day: datetime.date,
    per_day: int = 1,
    minutes: int = 30,
    day_off_every: int = 9,
) -> list[StudySession]:
    """``sessions`` study sessions of ``user`` written in bulk, as a long history would be: up to
    ``per_day`` a day (at 07:00, 11:00, 15:00... UTC), a day off every ``day_off_every`` days,
    the last on ``last_day``, each with the ledger entry logging it paid. No rule runs, so
    thousands take seconds; the user's maintained totals are then rebuilt from them, as
    ``recompute_totals --fix`` does."""
    days, left = [], sessions  # from the last day back, so that every history ends alike
    while left > 0:
        on_that_day = 0 if len(days) % day_off_every == day_off_every - 1 else min(per_day, left)
        days.append(on_that_day)
        left -= on_that_day
    days.reverse()
    first_day = last_day - datetime.timedelta(days=len(days) - 1)
    logged, entries = [], []
    for offset, on_that_day in enumerate(days):
        day = first_day + datetime.timedelta(days=offset)
        for slot in range(on_that_day):
            started = datetime.datetime.combine(day, datetime.time(7 + 4 * slot), tzinfo=datetime.UTC)
            subject = SUBJECTS[len(logged) % len(SUBJECTS)]
            session = StudySession(
                id=ObjectId(),
                user=user,
                subject=subject,
                subject_key=subject.casefold(),
                duration_minutes=minutes,
                started_at=started,
                ended_at=started + datetime.timedelta(minutes=minutes),
                time_zone="UTC",
                local_date=day,
                points_awarded=minutes,
                created_at=started + datetime.timedelta(minutes=minutes + 5),
            )
            logged.append(session)
            entries.append(
                PointsEntry(
                    user=user,
                    amount=minutes,
                    reason=PointsEntry.Reason.STUDY_SESSION,
                    reference=str(session.pk),
                    created_at=session.created_at,
                    studied_at=started,
                )
            )
    StudySession.objects.bulk_create(logged)
    PointsEntry.objects.bulk_create(entries)
    study_totals_rewrite(user_id=user.pk, sessions_model=StudySession)
    user.refresh_from_db()
    return logged
