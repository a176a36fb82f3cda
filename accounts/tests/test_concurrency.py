"""Races that the unique indexes settle: one refresh per token, one account per username."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import PASSWORD, client_for, user_create

pytestmark = pytest.mark.django_db(transaction=True)

RACERS = 8


def _race(request_once):
    barrier = threading.Barrier(RACERS)

    def run(number):
        try:
            barrier.wait()
            return request_once(number)
        finally:
            connection.close()

    with ThreadPoolExecutor(RACERS) as pool:
        return sorted(pool.map(run, range(RACERS)))


def _refresh(refresh):
    return APIClient().post("/api/auth/token/refresh/", {"refresh": refresh}, format="json")


def test_a_refresh_token_used_in_parallel_rotates_once_and_the_reuse_ends_the_family():
    _, pair = client_for(user_create())
    winners = []

    def refresh(number):
        response = _refresh(pair["refresh"])
        if response.status_code == 200:
            winners.append(response.json()["refresh"])
        return response.status_code

    assert _race(refresh) == [200] + [401] * (RACERS - 1)
    # The losers presented a token already rotated out: reuse, so the winner's pair goes too.
    assert _refresh(winners[0]).status_code == 401


def _race_registrations(usernames: list[str]) -> list[int]:
    """Register ``usernames[n]`` from racer n, each from its own address; the sorted statuses."""

    def register(number):
        response = APIClient().post(
            "/api/auth/register/",
            {"username": usernames[number], "email": f"ada{number}@example.com", "password": PASSWORD},
            format="json",
            REMOTE_ADDR=f"10.0.0.{number}",
        )
        if response.status_code == 400:
            assert "username" in response.json()["fields"]
        return response.status_code

    return _race(register)


def test_parallel_registrations_of_one_username_create_one_account():
    assert _race_registrations(["ada"] * RACERS) == [201] + [400] * (RACERS - 1)
    assert User.objects.filter(username="ada").count() == 1


def test_parallel_registrations_of_look_alike_usernames_create_one_account():
    # Case, full width and Cyrillic а: one key or one skeleton for all of them.
    names = ["ada", "Ada", "ADA", "ａｄａ", "\u0430da", "ad\u0430", "Ada", "aDa"]
    assert _race_registrations(names) == [201] + [400] * (RACERS - 1)
    assert User.objects.count() == 1
