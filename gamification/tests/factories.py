"""Test data builders for the game (plain functions: factory_boy is not a dependency)."""

from __future__ import annotations

import itertools

from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from gamification.invariants import ledger_check
from gamification.models import PointsEntry

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
