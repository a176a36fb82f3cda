"""MongoDB operations per accounts endpoint, pinned. Authentication (loading the user named by
the access token) is 1 operation; the throttles' counter upserts are counted too.
The figures are listed in docs/api.md."""

import datetime

import pytest
from rest_framework.test import APIClient

from accounts.tests.factories import PASSWORD, client_for, user_create
from sessions_app.tests.factories import log_session

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada():
    return user_create(username="ada", email="ada@example.com")


def test_register_costs_3(django_assert_max_num_queries):
    # throttle counter, duplicate check (username or email, one query), insert
    with django_assert_max_num_queries(3):
        response = APIClient().post(
            "/api/auth/register/",
            {"username": "grace", "email": "grace@example.com", "password": PASSWORD},
            format="json",
        )
    assert response.status_code == 201


def test_login_costs_3(ada, django_assert_max_num_queries):
    # throttle counters by address and by username, the user
    with django_assert_max_num_queries(3):
        response = APIClient().post(
            "/api/auth/token/", {"username": "ada", "password": PASSWORD}, format="json"
        )
    assert response.status_code == 200


def test_refresh_costs_3(ada, django_assert_max_num_queries):
    _, pair = client_for(ada)
    # revoke the old token (one insert; a reused token fails here), its family revoked?, the user
    with django_assert_max_num_queries(3):
        response = APIClient().post("/api/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json")
    assert response.status_code == 200


def test_logout_costs_2(ada, django_assert_max_num_queries):
    client, pair = client_for(ada)
    with django_assert_max_num_queries(2):  # authentication, revoke
        response = client.post("/api/auth/logout/", {"refresh": pair["refresh"]}, format="json")
    assert response.status_code == 205


def test_password_change_costs_3(ada, django_assert_max_num_queries):
    client, _ = client_for(ada)
    with django_assert_max_num_queries(3):  # authentication, password-check throttle, update
        response = client.post(
            "/api/auth/password/",
            {"old_password": PASSWORD, "new_password": "another-long-passphrase"},
            format="json",
        )
    assert response.status_code == 200


def test_profile_read_costs_1(ada, django_assert_max_num_queries):
    client, _ = client_for(ada)
    # Progress lives on the user document: authentication already read everything.
    with django_assert_max_num_queries(1):
        response = client.get("/api/me/")
    assert response.status_code == 200


def test_profile_update_costs_3_or_5_with_an_email_or_6_with_an_opt_out(ada, django_assert_max_num_queries):
    client, _ = client_for(ada)
    with django_assert_max_num_queries(3):  # authentication, profile throttle, update
        assert client.patch("/api/me/", {"display_name": "Ada"}, format="json").status_code == 200
    # authentication, profile and password-check throttles, email taken?, update
    with django_assert_max_num_queries(5):
        response = client.patch(
            "/api/me/", {"email": "ada@lovelace.org", "current_password": PASSWORD}, format="json"
        )
        assert response.status_code == 200
    # authentication, profile throttle, update; then the weekly board's copy: the user, one
    # bulkWrite, the commit (however many weeks the user has points in)
    with django_assert_max_num_queries(6):
        assert client.patch("/api/me/", {"leaderboard_opt_out": True}, format="json").status_code == 200


def test_schema_and_docs_cost_nothing(django_assert_max_num_queries):
    with django_assert_max_num_queries(0):
        assert APIClient().get("/api/schema/").status_code == 200
        assert APIClient().get("/api/docs/").status_code == 200


def test_account_delete_costs_15_however_long_the_history(ada, django_assert_max_num_queries):
    for days_ago in range(1, 6):
        log_session(ada, minutes=30, ago=datetime.timedelta(days=days_ago))
    client, _ = client_for(ada)
    # authentication, the password-check throttle; in one transaction, the user read again, one
    # delete per collection that holds the user's data (sessions, ledger, badges, quest progress,
    # achievements, study totals, week points, admin log, groups, permissions), the user, and the commit
    with django_assert_max_num_queries(15):
        response = client.delete("/api/me/", {"password": PASSWORD}, format="json")
    assert response.status_code == 204
