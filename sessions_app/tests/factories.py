"""Test data builders for study sessions: logged through the service, so every rule applies."""

from __future__ import annotations

import datetime

from django.utils import timezone

from accounts.models import User
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
