"""The study session, profile and leaderboard endpoints under injected faults.

Through the real endpoints with a JWT: POST /api/sessions/ (one multi-document transaction:
``find`` of the overlapping sessions, of the user's progress and of the maintained totals, one
``bulkWrite`` of the session, ledger, user and totals, ``commitTransaction``), DELETE
/api/sessions/{id}/ (``findAndModify`` of the session, then the same), GET /api/me/ and GET
/api/leaderboard/.
In every case the endpoint either succeeds (the driver or ``with_transaction`` retried) or
answers with the classified JSON error, and nothing is half written: the user's points equal
the ledger, the totals match the sessions, and an Idempotency-Key retry logs exactly one
session.

A failpoint's code 8000 cannot carry Atlas's text, so it is classified by code alone: kind
``atlas``, answered with the generic 500. The 507 of Atlas's quota text is checked against
real replies in studymaster/tests/test_errors.py.
"""

from __future__ import annotations

import datetime
import threading
import time

import pytest
from django.core.management import call_command
from django.utils import timezone

from gamification.models import Achievement, PointsEntry, QuestProgress, StudyTotal, UserBadge, WeekPoints
from gamification.services import catalog_cache_clear
from gamification.tests.factories import assert_points_invariant, ledger_sum
from sessions_app.models import StudySession
from sessions_app.tests.factories import api_client_for, log_session, make_user
from studymaster import db as studymaster_db
from studymaster.maintenance import current_state
from tests.fault_injection import FailPoints

pytestmark = [
    pytest.mark.faults,
    pytest.mark.embedded_only("arms failpoints on, or kills, the embedded server"),
]

URL = "/api/sessions/"
TRANSIENT = {
    "closeConnection": {"close_connection": True},
    "code91": {"error_code": 91},
    "code189": {"error_code": 189},
    "code11600": {"error_code": 11600},
}
WRITE_CONCERN_ERRORS = {
    "wtimeout64": {"code": 64, "errmsg": "waiting for replication timed out", "errInfo": {"wtimeout": True}},
    "shutdown91": {"code": 91, "errmsg": "Replication is being shut down"},
}
# Every command logging a study session sends, in order: the JWT's user read (aggregate), the
# throttle's counter (findAndModify), the reads in the transaction (find), its one write, the commit.
LOG_COMMANDS = ["aggregate", "findAndModify", "find", "bulkWrite", "commitTransaction"]
WRITE_COMMANDS = ["findAndModify", "bulkWrite", "commitTransaction"]
UNAVAILABLE = {
    "code": "database_unavailable",
    "message": "The database is temporarily unavailable. Try again shortly.",
}
GENERIC_500 = {
    "code": "database_error",
    "message": "The server could not complete the request. The operators have been told.",
}


def _post(client, *, key=None, minutes=30, started_at=None):
    headers = {"Idempotency-Key": key} if key else None
    body = {"subject": "Algebra", "duration_minutes": minutes}
    if started_at is not None:
        body["started_at"] = started_at.isoformat()
    return client.post(URL, body, format="json", headers=headers)


def _assert_unavailable(response):
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "5"
    assert response.json() == UNAVAILABLE


def _assert_whole(user, *, sessions: int | None = None) -> list[StudySession]:
    """Nothing half written: points == ledger, totals == sessions, no duplicate key or overlap."""
    user.refresh_from_db()
    logged = list(StudySession.objects.filter(user=user).order_by("started_at"))
    assert_points_invariant(user)
    assert user.session_count == len(logged)
    assert user.total_minutes == sum(s.duration_minutes for s in logged)
    assert user.points == sum(s.points_awarded for s in logged)
    keys = [s.idempotency_key for s in logged if s.idempotency_key]
    assert len(keys) == len(set(keys))
    for earlier, later in zip(logged, logged[1:], strict=False):
        assert earlier.ended_at <= later.started_at
    if sessions is not None:
        assert len(logged) == sessions
    return logged


# -- POST /api/sessions/ -------------------------------------------------------------------------


# Each command of the log meets a closed connection and one of the failover codes.
ONCE = [(command, "closeConnection") for command in LOG_COMMANDS] + list(
    zip(LOG_COMMANDS, ["code91", "code189", "code11600", "code91", "code189"], strict=True)
)


@pytest.mark.parametrize(("command", "fault"), ONCE)
def test_log_rides_out_one_transient_failure_of_each_command(failpoints, fault, command):
    user = make_user()
    failpoints.fail(command, **TRANSIENT[fault])
    response = _post(api_client_for(user))
    assert response.status_code == 201, response.content
    _assert_whole(user, sessions=1)


@pytest.mark.parametrize("command", ["find", "bulkWrite", "commitTransaction"])
def test_log_rides_out_a_failure_repeated_inside_the_transaction(failpoints, command):
    """with_transaction reruns the whole transaction (or the commit): still exactly one session."""
    user = make_user()
    failpoints.fail(command, times=3, error_code=91)
    assert _post(api_client_for(user)).status_code == 201
    _assert_whole(user, sessions=1)


@pytest.mark.parametrize("fault", ["closeConnection", "code11600"])
def test_log_failing_past_the_drivers_retry_answers_503_and_the_keyed_retry_logs_once(failpoints, fault):
    user = make_user()
    client = api_client_for(user)
    failpoints.fail("aggregate", times=2, **TRANSIENT[fault])  # the read and its one retry
    _assert_unavailable(_post(client, key="k-1"))
    _assert_whole(user, sessions=0)
    first = _post(client, key="k-1")
    again = _post(client, key="k-1")
    assert first.status_code == again.status_code == 201
    assert "Idempotent-Replayed" not in first and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    _assert_whole(user, sessions=1)


@pytest.mark.parametrize("command", LOG_COMMANDS)
def test_log_refused_with_code_8000_answers_the_generic_500_and_writes_nothing(failpoints, command):
    user = make_user()
    client = api_client_for(user)
    current_state()  # the maintenance flag, read once a second: warm, so the fault meets the log's find
    failpoints.fail(command, error_code=8000)
    response = _post(client, key="quota")
    assert response.status_code == 500
    assert response.json() == GENERIC_500
    assert "Retry-After" not in response
    _assert_whole(user, sessions=0)
    assert ledger_sum(user) == 0
    assert _post(client, key="quota").status_code == 201
    _assert_whole(user, sessions=1)


@pytest.mark.parametrize("command", WRITE_COMMANDS)
@pytest.mark.parametrize("error", list(WRITE_CONCERN_ERRORS))
def test_log_with_a_write_concern_error_succeeds_or_answers_503_then_logs_once(failpoints, error, command):
    user = make_user()
    client = api_client_for(user)
    failpoints.fail(command, write_concern_error=WRITE_CONCERN_ERRORS[error])
    response = _post(client, key="wce")
    if command == "commitTransaction":
        # The commit was applied; with_transaction retries the commit, which is idempotent.
        assert response.status_code == 201, response.content
    else:
        _assert_unavailable(response)  # the transaction was aborted
        _assert_whole(user, sessions=0)
    retry = _post(client, key="wce")
    assert retry.status_code == 201
    assert retry.json()["id"] == (
        response.json()["id"] if response.status_code == 201 else retry.json()["id"]
    )
    _assert_whole(user, sessions=1)


def test_a_transaction_failing_for_longer_than_its_time_limit_answers_503_in_time(failpoints, monkeypatch):
    """A failover that outlasts the budget ends in a 503, not a request gunicorn kills at 30 s."""
    monkeypatch.setattr(studymaster_db, "TRANSACTION_TIME_LIMIT_SECONDS", 2)
    user = make_user()
    client = api_client_for(user)
    failpoints.fail("bulkWrite", times=1000, error_code=91)
    started = time.monotonic()
    response = _post(client, key="outage")
    assert time.monotonic() - started < 5
    _assert_unavailable(response)
    failpoints.off()
    _assert_whole(user, sessions=0)
    assert _post(client, key="outage").status_code == 201
    _assert_whole(user, sessions=1)


# -- DELETE /api/sessions/{id}/ ----------------------------------------------------------------


def _logged_user():
    user = make_user()
    session = log_session(user, minutes=45, ago=datetime.timedelta(hours=2))
    return user, session


@pytest.mark.parametrize(
    ("command", "fault"),
    [
        ("findAndModify", "closeConnection"),
        ("aggregate", "code11600"),
        ("find", "code91"),
        ("bulkWrite", "code189"),
        ("commitTransaction", "closeConnection"),
    ],
)
def test_delete_rides_out_one_transient_failure(failpoints, fault, command):
    user, session = _logged_user()
    client = api_client_for(user)
    failpoints.fail(command, **TRANSIENT[fault])
    assert client.delete(f"{URL}{session.pk}/").status_code == 204
    _assert_whole(user, sessions=0)
    assert user.points == 0


@pytest.mark.parametrize("command", WRITE_COMMANDS)
@pytest.mark.parametrize(
    "fault",
    [
        {"error_code": 8000},
        {"write_concern_error": WRITE_CONCERN_ERRORS["wtimeout64"]},
        {"write_concern_error": WRITE_CONCERN_ERRORS["shutdown91"]},
    ],
    ids=["code8000", "wtimeout64", "shutdown91"],
)
def test_delete_that_fails_takes_nothing_back_and_the_retry_deletes_once(failpoints, fault, command):
    user, session = _logged_user()
    client = api_client_for(user)
    paid = session.points_awarded
    failpoints.fail(command, **fault)
    response = client.delete(f"{URL}{session.pk}/")
    if response.status_code == 204:
        _assert_whole(user, sessions=0)
    else:
        expected = 500 if "error_code" in fault else 503
        assert response.status_code == expected
        assert response.json() == (GENERIC_500 if expected == 500 else UNAVAILABLE)
        _assert_whole(user, sessions=1)
        assert user.points == paid
        assert client.delete(f"{URL}{session.pk}/").status_code == 204
        _assert_whole(user, sessions=0)
    assert user.points == 0
    assert client.delete(f"{URL}{session.pk}/").status_code == 404


# -- GET /api/me/ and /api/leaderboard/ --------------------------------------------------------

READS = ["/api/me/", "/api/leaderboard/", "/api/leaderboard/?period=all"]


@pytest.mark.parametrize(
    ("url", "fault"), list(zip(READS, ["closeConnection", "code189", "code91"], strict=True))
)
def test_reads_ride_out_one_failure_and_answer_503_when_it_lasts(failpoints, fault, url):
    user, _ = _logged_user()
    client = api_client_for(user)
    expected = client.get(url).json()
    failpoints.fail("aggregate", **TRANSIENT[fault])
    response = client.get(url)
    assert response.status_code == 200
    assert response.json() == expected
    failpoints.fail("aggregate", times=2, **TRANSIENT[fault])
    _assert_unavailable(client.get(url))


@pytest.mark.parametrize("url", READS)
def test_reads_refused_with_code_8000_answer_the_generic_500(failpoints, url):
    client = api_client_for(_logged_user()[0])
    failpoints.fail("aggregate", error_code=8000)
    response = client.get(url)
    assert response.status_code == 500
    assert response.json() == GENERIC_500


# -- a server killed and restarted ---------------------------------------------------------------


@pytest.fixture
def killable_app_db(restartable_django_db):
    """The restartable server with the schema (indexes, badge and quest catalog) migrated."""
    call_command("migrate", verbosity=0)
    catalog_cache_clear()
    yield restartable_django_db
    catalog_cache_clear()


def _retry_until_answered(call, *, seconds=15.0):
    """Repeat ``call`` while it answers 503, as a client honouring Retry-After would (faster)."""
    deadline = time.monotonic() + seconds
    while True:
        response = call()
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


@pytest.mark.slow
def test_a_batch_of_logs_with_a_crash_between_two_requests_logs_each_once(killable_app_db):
    user = make_user()
    client = api_client_for(user)
    base = timezone.now() - datetime.timedelta(hours=10)
    answers = []
    for n in range(6):
        if n == 2:
            killable_app_db.kill()  # request 2 finds no server: 503 after server selection (5 s)
        if n == 3:
            killable_app_db.restart()  # request 3 meets the dead pool: the driver retries
        started = base + datetime.timedelta(minutes=30 * n)
        answers.append(_post(client, key=f"batch-{n}", minutes=20, started_at=started))
    _assert_unavailable(answers[2])
    assert [r.status_code for n, r in enumerate(answers) if n != 2] == [201] * 5
    _assert_whole(user, sessions=5)
    for n in range(6):  # the client retries every request with its key
        started = base + datetime.timedelta(minutes=30 * n)
        retry = _retry_until_answered(
            lambda n=n, s=started: _post(client, key=f"batch-{n}", minutes=20, started_at=s)
        )
        assert retry.status_code == 201
    logged = _assert_whole(user, sessions=6)
    assert sorted(s.idempotency_key for s in logged) == [f"batch-{n}" for n in range(6)]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["bulkWrite", "commitTransaction"])
def test_a_log_in_flight_when_the_server_crashes_is_logged_once_after_the_keyed_retry(
    killable_app_db, command
):
    user = make_user()
    client = api_client_for(user)
    failpoints = FailPoints(killable_app_db.uri())
    failpoints.fail(command, block_ms=3000)
    failpoints.client.close()
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("response", _post(client, key="inflight")))
    thread.start()
    time.sleep(0.5)  # the request now waits on the blocked command
    killable_app_db.kill()
    killable_app_db.restart()
    thread.join(timeout=60)
    assert not thread.is_alive()
    response = result["response"]
    if response.status_code != 201:
        _assert_unavailable(response)
    _assert_whole(user)
    retry = _retry_until_answered(lambda: _post(client, key="inflight"))
    assert retry.status_code == 201
    if response.status_code == 201:
        assert retry.json() == response.json()
    _assert_whole(user, sessions=1)
    assert client.get("/api/me/").json()["session_count"] == 1


# -- PATCH /api/me/ and POST /api/auth/password/: ORM update() is update_many ------------------


@pytest.mark.parametrize("fault", ["closeConnection", "code91"])
def test_profile_and_password_updates_are_retried_though_the_driver_does_not(failpoints, fault):
    user = make_user()
    client = api_client_for(user)
    failpoints.fail("update", **TRANSIENT[fault])
    response = client.patch("/api/me/", {"display_name": "Ada"}, format="json")
    assert response.status_code == 200
    assert response.json()["display_name"] == "Ada"
    failpoints.fail("update", **TRANSIENT[fault])
    response = client.post(
        "/api/auth/password/",
        {"old_password": "a-long-passphrase", "new_password": "another-long-passphrase"},
        format="json",
    )
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.display_name == "Ada"
    assert user.check_password("another-long-passphrase")


def test_profile_update_failing_past_its_retries_answers_503(failpoints):
    user = make_user()
    failpoints.fail("update", times=3, error_code=11600)  # the first attempt and two retries
    _assert_unavailable(api_client_for(user).patch("/api/me/", {"display_name": "Ada"}, format="json"))
    user.refresh_from_db()
    assert user.display_name != "Ada"


# -- DELETE /api/me/ ---------------------------------------------------------------------------


def _owned(user) -> dict[str, int]:
    """How many documents of each per-user collection belong to ``user``."""
    models = (StudySession, PointsEntry, UserBadge, QuestProgress, Achievement, StudyTotal, WeekPoints)
    return {model.__name__: model.objects.filter(user_id=user.pk).count() for model in models}


@pytest.mark.parametrize("skip", [0, 2, 4])
def test_deleting_the_account_fails_whole_or_not_at_all_and_the_retry_deletes_it(failpoints, skip):
    """The cascade is one transaction: a refusal after ``skip`` deletes leaves everything."""
    user, _ = _logged_user()
    client = api_client_for(user)
    owned = _owned(user)
    assert owned["StudySession"] == 1 and owned["PointsEntry"] >= 1 and owned["Achievement"] >= 1
    failpoints.client.admin.command(
        "configureFailPoint",
        "failCommand",
        mode={"skip": skip},
        data={"failCommands": ["delete"], "errorCode": 8000, "appName": failpoints.app_name},
    )
    response = client.delete("/api/me/", {"password": "a-long-passphrase"}, format="json")
    failpoints.off()
    assert response.status_code == 500
    assert response.json() == GENERIC_500
    assert _owned(user) == owned
    _assert_whole(user, sessions=1)
    assert client.delete("/api/me/", {"password": "a-long-passphrase"}, format="json").status_code == 204
    assert not type(user).objects.filter(pk=user.pk).exists()
    assert set(_owned(user).values()) == {0}
