"""The health endpoints: liveness, readiness, the detail, and the admin page."""

import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework_simplejwt.tokens import RefreshToken

from operations.health import M0_STORAGE_QUOTA_BYTES, database_detail
from studymaster.observability import command_stats

HEALTH_TOKEN = "health-token-for-tests"


@pytest.fixture
def health_settings(settings):
    settings.HEALTH_TOKEN = HEALTH_TOKEN
    return settings


def _user(*, staff: bool):
    return get_user_model().objects.create_user(
        username=f"{'staff' if staff else 'learner'}-{time.monotonic_ns()}",
        password="pw-12345678",
        is_staff=staff,
    )


def _bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_live_makes_no_database_call(client):
    """No django_db mark: pytest-django fails any database access here."""
    command_stats.reset()
    response = client.get("/api/health/live/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert command_stats.latencies() == {}


@pytest.mark.django_db
def test_ready_pings_the_database(client):
    response = client.get("/api/health/ready/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.embedded_only("points Django at a port where nothing listens")
def test_ready_answers_503_within_a_few_seconds_when_the_database_is_unreachable(
    unreachable_django_db, client
):
    started = time.monotonic()
    response = client.get("/api/health/ready/")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {"code": "database_unavailable", "message": "The database is not reachable."}
    assert elapsed < 4.0, f"ready took {elapsed:.2f}s"


@pytest.mark.django_db
def test_detail_needs_a_staff_jwt_or_the_health_token(health_settings, client):
    assert client.get("/api/health/").status_code == 401
    assert client.get("/api/health/", **_bearer("wrong")).status_code == 401
    learner_jwt = str(RefreshToken.for_user(_user(staff=False)).access_token)
    assert client.get("/api/health/", **_bearer(learner_jwt)).status_code == 403
    staff_jwt = str(RefreshToken.for_user(_user(staff=True)).access_token)
    assert client.get("/api/health/", **_bearer(staff_jwt)).status_code == 200
    assert client.get("/api/health/", **_bearer(HEALTH_TOKEN)).status_code == 200


@pytest.mark.django_db
def test_health_token_unset_refuses_an_empty_bearer(settings, client):
    settings.HEALTH_TOKEN = ""
    assert client.get("/api/health/", HTTP_AUTHORIZATION="Bearer ").status_code == 401


@pytest.mark.django_db
def test_detail_reports_every_field(health_settings, client):
    client.get("/api/health/ready/")  # at least one command recorded
    body = client.get("/api/health/", **_bearer(HEALTH_TOKEN)).json()
    assert body["status"] in {"ok", "degraded"}
    database = body["database"]
    assert database["reachable"] is True
    assert database["latency_ms"] >= 0
    assert database["server_version"]
    assert database["storage"]["quota_bytes"] == M0_STORAGE_QUOTA_BYTES
    assert database["storage"]["known"] is True and database["storage"]["used_bytes"] >= 0
    assert database["connections"]["limit"] == 500
    assert set(body["pool"]) >= {"open", "in_use", "waiting", "checkout_failures"}
    assert body["pool"]["open"] >= 1
    assert body["pool"]["checkouts"] >= 1
    assert body["commands"]["ping"]["count"] >= 1
    assert body["commands"]["ping"]["p95_ms"] >= body["commands"]["ping"]["p50_ms"] >= 0
    assert body["operations"]["budget_per_second"] == 100
    assert body["operations"]["per_second"] > 0


@pytest.mark.django_db
def test_detail_sends_at_most_three_commands(health_settings, client):
    client.get("/api/health/ready/")  # connect first; the first connection checks the version
    command_stats.reset()
    client.get("/api/health/", **_bearer(HEALTH_TOKEN))
    assert sum(stats["count"] for stats in command_stats.latencies().values()) <= 3


@pytest.mark.embedded_only("points Django at a port where nothing listens")
def test_detail_when_unreachable_is_503_and_keeps_the_error_text_out(
    health_settings, unreachable_django_db, client
):
    started = time.monotonic()
    response = client.get("/api/health/", **_bearer(HEALTH_TOKEN))
    assert time.monotonic() - started < 4.0
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["database"] == {"reachable": False, "problem": "unreachable"}
    assert "127.0.0.1" not in response.content.decode()
    assert "pool" in body and "operations" in body


def test_a_read_write_user_is_told_what_is_not_known(atlas_db):
    """Like an Atlas app user: readWrite on its database, refused serverStatus."""
    detail = database_detail(atlas_db.client, atlas_db.name)
    connections = detail["connections"]
    if connections["known"]:
        pytest.skip("this server lets the user run serverStatus")
    assert connections["reason"] == "serverStatus refused (authorization)"
    assert "current" not in connections
    assert detail["server_version"]
    assert detail["storage"]["known"] is True


@pytest.mark.django_db
def test_admin_page_is_staff_only_and_draws_the_latency_chart(client):
    response = client.get("/admin/health/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    staff = _user(staff=True)
    staff_client = Client()
    staff_client.force_login(staff)
    staff_client.get("/api/health/ready/")
    page = staff_client.get("/admin/health/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Database health" in html
    assert "<svg" in html and "ping" in html
    assert "Storage" in html and "Connections" in html and "Operations/s" in html
    assert 'href="/admin/health/"' in staff_client.get("/admin/").content.decode()
