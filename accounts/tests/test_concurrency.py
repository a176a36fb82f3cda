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


def test_a_refresh_token_used_in_parallel_rotates_once():
    _, pair = client_for(user_create())

    def refresh(number):
        return (
            APIClient()
            .post("/api/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json")
            .status_code
        )

    assert _race(refresh) == [200] + [401] * (RACERS - 1)


def test_parallel_registrations_of_one_username_create_one_account():
    def register(number):
        response = APIClient().post(
            "/api/auth/register/",
            {"username": "ada", "email": f"ada{number}@example.com", "password": PASSWORD},
            format="json",
            REMOTE_ADDR=f"10.0.0.{number}",
        )
        if response.status_code == 400:
            assert "username" in response.json()["fields"]
        return response.status_code

    assert _race(register) == [201] + [400] * (RACERS - 1)
    assert User.objects.filter(username="ada").count() == 1
