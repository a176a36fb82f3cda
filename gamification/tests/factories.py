"""Test data builders for the game (plain functions: factory_boy is not a dependency).

The game learns of study sessions only through its contract, ``study_change_record`` with a
``StudyChange``: :func:`record_study` tells it of one the way ``sessions_app`` does, so these
tests need no study session at all. The game keeps its own totals of what it was told.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import zoneinfo

from bson import ObjectId
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from gamification.invariants import ledger_check
from gamification.models import PointsEntry
from gamification.services import StudyChange, StudyOutcome, study_change_record
from studymaster.dates import local_date_at
from studymaster.db import run_in_transaction

_numbers = itertools.count(1)


def make_user(*, username: str | None = None, time_zone: str = "UTC", **fields) -> User:
    number = next(_numbers)
    username = username or f"learner{number}"
    return User.objects.create_user(
        username=username,
        email=f"{username}@example.com",
        password="a-long-passphrase",
        time_zone=time_zone,
        **fields,
    )


def api_client_for(user: User) -> APIClient:
    """An APIClient that authenticates with a real JWT access token (the auth read is 1 op)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return client


def ledger_sum(user: User) -> int:
    return sum(PointsEntry.objects.filter(user=user).values_list("amount", flat=True))


def assert_points_invariant(user: User) -> None:
    """The user's points equal their ledger (gamification.invariants); ``user`` is refreshed too."""
    user.refresh_from_db()
    check = ledger_check(connection.database, user_ids=[user.pk])
    assert (check.users, check.off_ledger) == (1, []), f"{user.points} points, ledger {ledger_sum(user)}"


def study_change(
    *,
    local_date: datetime.date,
    minutes: int,
    subject: str = "Mathematics",
    time_zone: str = "UTC",
    started_at: datetime.datetime | None = None,
    session_id: str | None = None,
) -> StudyChange:
    """The facts of logging one study session of ``minutes`` on ``local_date`` (in ``time_zone``;
    started at ``started_at``, by default at noon that day)."""
    noon = datetime.datetime.combine(local_date, datetime.time(12), tzinfo=zoneinfo.ZoneInfo(time_zone))
    return StudyChange(
        session_id=session_id or str(ObjectId()),
        local_date=local_date,
        time_zone=time_zone,
        started_at=started_at or noon,
        minutes=minutes,
        subject_key=" ".join(subject.split()).casefold(),
        subject=subject,
    )


def deletion_of(logged: StudyChange) -> StudyChange:
    """The facts of deleting the session that ``logged`` logged."""
    return dataclasses.replace(logged, minutes=-logged.minutes)


def record_study(
    user: User,
    *,
    minutes: int = 30,
    subject: str = "Mathematics",
    ago: datetime.timedelta | None = None,
    now: datetime.datetime | None = None,
) -> StudyOutcome:
    """Tell the game that ``user`` studied ``minutes``, started ``ago`` (default: ``minutes``) before ``now``."""
    now = now or timezone.now()
    started_at = now - (ago if ago is not None else datetime.timedelta(minutes=minutes))
    change = study_change(
        local_date=local_date_at(user, started_at),
        minutes=minutes,
        subject=subject,
        time_zone=user.time_zone,
        started_at=started_at,
    )
    return run_in_transaction(lambda: study_change_record(user=user, change=change, now=now))
