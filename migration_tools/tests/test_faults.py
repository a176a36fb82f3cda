"""Fault injection through Django's own connection: failpoints, and a server killed mid-request.

In every case the endpoint either succeeds or answers with the classified JSON error, and
nothing is half written. To cover another endpoint or command, take the ``failpoints`` or
``restartable_django_db`` fixture (tests/fault_injection.py), arm a fault, call it.
"""

import threading
import time

import pytest
from django.contrib.auth import get_user_model

from tests.fault_injection import FailPoints

pytestmark = [
    pytest.mark.faults,
    pytest.mark.embedded_only("arms failpoints on, kills, or replaces the embedded server"),
    pytest.mark.urls("migration_tools.tests.urls_faults"),
]

TRANSIENT_CODES = [91, 189, 11600]
HEALTH_TOKEN = "health-token-for-fault-tests"


def _users(username: str) -> int:
    return get_user_model().objects.filter(username=username).count()


def _assert_unavailable(response):
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "code": "database_unavailable",
        "message": "The database is temporarily unavailable. Try again shortly.",
    }


# -- readiness ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault", [{"close_connection": True}] + [{"error_code": code} for code in TRANSIENT_CODES]
)
def test_ready_rides_out_one_transient_failure(failpoints, client, fault):
    failpoints.fail("ping", **fault)
    assert client.get("/api/health/ready/").status_code == 200


@pytest.mark.parametrize("fault", [{"error_code": 91}, {"error_code": 8000}, {"close_connection": True}])
def test_ready_answers_503_quickly_while_the_failure_lasts(failpoints, client, fault):
    failpoints.fail("ping", times=50, **fault)
    started = time.monotonic()
    response = client.get("/api/health/ready/")
    assert time.monotonic() - started < 4.0
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"


def test_detail_shows_what_is_known_when_atlas_refuses_db_stats(failpoints, client, settings):
    settings.HEALTH_TOKEN = HEALTH_TOKEN
    failpoints.fail("dbStats", error_code=8000)
    response = client.get("/api/health/", HTTP_AUTHORIZATION=f"Bearer {HEALTH_TOKEN}")
    assert response.status_code == 200
    storage = response.json()["database"]["storage"]
    assert storage == {"quota_bytes": 512 * 1024 * 1024, "known": False, "reason": "dbStats refused (atlas)"}


# -- an ORM read --------------------------------------------------------------------------------


def test_orm_read_survives_one_closed_connection(failpoints, client):
    failpoints.fail("aggregate", close_connection=True)
    response = client.get("/faults/users/count/")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "fault", [{"close_connection": True}] + [{"error_code": code} for code in TRANSIENT_CODES]
)
def test_orm_read_failing_twice_answers_503(failpoints, client, fault):
    failpoints.fail("aggregate", times=2, **fault)  # the driver's attempt and its one retry
    _assert_unavailable(client.get("/faults/users/count/"))


def test_orm_read_refused_by_atlas_answers_a_generic_500(failpoints, client):
    failpoints.fail("aggregate", error_code=8000)
    response = client.get("/faults/users/count/")
    assert response.status_code == 500
    assert response.json() == {
        "code": "database_error",
        "message": "The server could not complete the request. The operators have been told.",
    }


# -- an ORM write ---------------------------------------------------------------------------


def test_orm_write_after_one_closed_connection_is_written_once(failpoints, client):
    failpoints.fail("insert", close_connection=True)
    response = client.post("/faults/users/", {"username": "once"}, content_type="application/json")
    assert response.status_code == 201
    assert _users("once") == 1


@pytest.mark.parametrize("code", TRANSIENT_CODES)
def test_orm_write_failing_twice_answers_503_and_writes_nothing(failpoints, client, code):
    failpoints.fail("insert", times=2, error_code=code)
    _assert_unavailable(client.post("/faults/users/", {"username": "never"}, content_type="application/json"))
    assert _users("never") == 0


def test_orm_write_with_a_retryable_write_concern_error_is_written_once(failpoints, client):
    failpoints.fail(
        "insert",
        write_concern_error={"code": 91, "errmsg": "Replication is being shut down"},
        error_labels=["RetryableWriteError"],
    )
    response = client.post("/faults/users/", {"username": "wce"}, content_type="application/json")
    assert response.status_code == 201
    assert _users("wce") == 1


def test_orm_write_whose_write_concern_timed_out_answers_503_and_is_not_duplicated(failpoints, client):
    failpoints.fail(
        "insert",
        write_concern_error={
            "code": 64,
            "errmsg": "waiting for replication timed out",
            "errInfo": {"wtimeout": True},
        },
    )
    _assert_unavailable(
        client.post("/faults/users/", {"username": "wtimeout"}, content_type="application/json")
    )
    assert _users("wtimeout") <= 1


def test_orm_write_over_quota_answers_a_generic_500_and_writes_nothing(failpoints, client):
    failpoints.fail("insert", error_code=8000)
    response = client.post("/faults/users/", {"username": "refused"}, content_type="application/json")
    assert response.status_code == 500
    assert _users("refused") == 0


# -- a server killed and restarted in the middle of a request --------------------------------


def _in_background(call):
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("response", call()))
    thread.start()
    return thread, result


def _kill_and_restart_while_blocked(server, command: str, call):
    """Hold ``command`` on the server, run ``call`` in a thread, crash and restart the server."""
    failpoints = FailPoints(server.uri())
    failpoints.fail(command, block_ms=3000)
    failpoints.client.close()
    thread, result = _in_background(call)
    time.sleep(0.5)  # the request is now waiting on the blocked command
    server.kill()
    server.restart()
    thread.join(timeout=30)
    assert not thread.is_alive()
    return result["response"]


@pytest.mark.slow
def test_read_in_flight_when_the_server_crashes(restartable_django_db, client):
    get_user_model().objects.create(username="durable")
    response = _kill_and_restart_while_blocked(
        restartable_django_db, "aggregate", lambda: client.get("/faults/users/count/")
    )
    if response.status_code == 200:
        assert response.json() == {"users": 1}
    else:
        _assert_unavailable(response)
    assert client.get("/api/health/ready/").status_code == 200
    assert _users("durable") == 1  # acknowledged before the crash, kept by --sync-on-commit


@pytest.mark.slow
def test_write_in_flight_when_the_server_crashes_is_written_at_most_once(restartable_django_db, client):
    response = _kill_and_restart_while_blocked(
        restartable_django_db,
        "insert",
        lambda: client.post("/faults/users/", {"username": "inflight"}, content_type="application/json"),
    )
    assert client.get("/api/health/ready/").status_code == 200
    if response.status_code == 201:
        assert _users("inflight") == 1
    else:
        _assert_unavailable(response)
        assert _users("inflight") <= 1


@pytest.mark.slow
def test_ready_follows_a_crash_and_a_restart(restartable_django_db, client):
    assert client.get("/api/health/ready/").status_code == 200
    restartable_django_db.kill()
    started = time.monotonic()
    _assert_unavailable_ready = client.get("/api/health/ready/")
    assert _assert_unavailable_ready.status_code == 503
    assert time.monotonic() - started < 4.0
    restartable_django_db.restart()
    assert client.get("/api/health/ready/").status_code == 200


# -- no server at all ---------------------------------------------------------------------------


@pytest.mark.slow
def test_orm_answers_503_within_the_server_selection_timeout_when_nothing_listens(
    unreachable_django_db, client
):
    """Both a plain view and a DRF view; bounded by MONGODB_SERVER_SELECTION_TIMEOUT_MS (5 s)."""
    for call in (
        lambda: client.get("/faults/users/count/"),
        lambda: client.post("/faults/users/", {"username": "nobody"}, content_type="application/json"),
    ):
        started = time.monotonic()
        response = call()
        assert time.monotonic() - started < 7.0
        _assert_unavailable(response)
