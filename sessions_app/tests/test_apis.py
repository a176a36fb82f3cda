"""The study session and stats endpoints through the HTTP API."""

from __future__ import annotations

import datetime

import pytest
from bson import ObjectId
from django.utils import timezone
from rest_framework.test import APIClient

from gamification.models import PointsEntry
from gamification.tests.factories import assert_points_invariant
from sessions_app.models import StudySession
from sessions_app.tests.factories import api_client_for, history_in_bulk, log_session, make_user

pytestmark = pytest.mark.django_db

URL = "/api/sessions/"


def _ago(**delta) -> str:
    return (timezone.now() - datetime.timedelta(**delta)).isoformat()


def _post(client, key=None, **body):
    headers = {"Idempotency-Key": key} if key is not None else None
    return client.post(
        URL, {"subject": "Algebra", "duration_minutes": 30, **body}, format="json", headers=headers
    )


def test_logging_a_session_returns_its_id_and_points():
    user = make_user()
    response = _post(api_client_for(user), started_at=_ago(hours=3), notes="chapter 4")
    assert response.status_code == 201
    body = response.json()
    assert ObjectId(body["id"])
    # 30 minutes, plus the daily "study 30 minutes" reward when the session is on today's date.
    assert body["points_awarded"] in (30, 50)
    assert body["notes"] == "chapter 4"
    assert body["ended_at"] > body["started_at"]
    assert body["minutes_unpaid"] == 0
    user.refresh_from_db()
    assert (user.session_count, user.total_minutes, user.points) == (1, 30, body["points_awarded"])
    assert_points_invariant(user)


def test_without_started_at_the_session_has_just_ended_in_the_users_time_zone():
    user = make_user(time_zone="Asia/Tokyo")
    body = _post(api_client_for(user)).json()
    started = datetime.datetime.fromisoformat(body["started_at"].replace("Z", "+00:00"))
    ended = datetime.datetime.fromisoformat(body["ended_at"].replace("Z", "+00:00"))
    assert abs((timezone.now() - ended).total_seconds()) < 60
    assert ended - started == datetime.timedelta(minutes=30)
    assert (
        body["local_date"]
        == started.astimezone(datetime.timezone(datetime.timedelta(hours=9))).date().isoformat()
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"subject": ""}, "subject"),
        ({"subject": "   "}, "subject"),
        ({"subject": "x" * 101}, "subject"),
        ({"duration_minutes": 0}, "duration_minutes"),
        ({"duration_minutes": 721}, "duration_minutes"),
        ({"duration_minutes": "long"}, "duration_minutes"),
        ({"duration_minutes": 1.5}, "duration_minutes"),
        ({"started_at": "yesterday"}, "started_at"),
        ({"notes": "n" * 2001}, "notes"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(body, field):
    response = _post(api_client_for(make_user()), **body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert field in response.json()["fields"]
    assert StudySession.objects.count() == 0


def test_a_session_that_has_not_ended_by_now_is_refused():
    client = api_client_for(make_user())
    # Finding 3: a session ending 12 h from now was paid at once.
    ends_in_12_hours = _post(client, started_at=_ago(minutes=0), duration_minutes=720)
    assert ends_in_12_hours.status_code == 400
    assert "must have ended by now" in ends_in_12_hours.json()["fields"]["started_at"][0]
    assert _post(client, started_at=_ago(minutes=-10)).status_code == 400  # starts in the future
    assert _post(client, started_at=_ago(minutes=28)).status_code == 400  # ends in 2 minutes
    assert StudySession.objects.count() == 0
    # Clock skew: ending up to a minute ahead of the server's clock is fine.
    assert _post(client, started_at=_ago(minutes=29, seconds=30)).status_code == 201


def test_a_session_is_logged_at_most_7_days_after_it_ended():
    client = api_client_for(make_user())
    response = _post(client, started_at=_ago(days=7, minutes=35))  # ended 7 days and 5 minutes ago
    assert response.status_code == 400
    assert response.json()["fields"]["started_at"] == [
        "A study session can be logged at most 7 days after it ended."
    ]
    # Ended 6 days and 23 hours ago, so it started more than 7 days ago: still fine.
    assert _post(client, started_at=_ago(days=7, minutes=30, hours=-1)).status_code == 201


def test_the_backdating_limit_is_a_setting(settings):
    settings.STUDY_SESSION_MAX_BACKDATE_DAYS = 1
    client = api_client_for(make_user())
    refused = _post(client, started_at=_ago(days=1, minutes=31))
    assert refused.json()["fields"]["started_at"] == [
        "A study session can be logged at most 1 day after it ended."
    ]
    assert _post(client, started_at=_ago(hours=23)).status_code == 201


def test_the_response_says_what_was_paid_and_what_the_daily_cap_left_unpaid(settings):
    settings.STUDY_DAILY_CAP_MINUTES = 45
    client = api_client_for(make_user())
    first = _post(client, started_at=_ago(hours=3), duration_minutes=30).json()
    assert (first["points_awarded"], first["minutes_unpaid"]) == (30 + 20, 0)  # + "30 minutes today"
    second = _post(client, started_at=_ago(hours=2), duration_minutes=30).json()
    assert (second["points_awarded"], second["minutes_unpaid"]) == (15 + 10, 15)  # + "2 sessions today"
    assert client.get(f"{URL}{second['id']}/").json()["minutes_unpaid"] == 15


def test_overlapping_sessions_are_refused_and_touching_ones_are_not():
    user = make_user()
    client = api_client_for(user)
    start = timezone.now().replace(microsecond=0) - datetime.timedelta(hours=5)
    assert _post(client, started_at=start.isoformat(), duration_minutes=60).status_code == 201
    overlapping = _post(client, started_at=(start + datetime.timedelta(minutes=59)).isoformat())
    assert overlapping.status_code == 400
    assert "overlaps" in overlapping.json()["fields"]["started_at"][0]
    inside = _post(
        client, started_at=(start - datetime.timedelta(minutes=10)).isoformat(), duration_minutes=120
    )
    assert inside.status_code == 400
    touching = _post(client, started_at=(start + datetime.timedelta(minutes=60)).isoformat())
    assert touching.status_code == 201
    before = _post(client, started_at=(start - datetime.timedelta(minutes=30)).isoformat())
    assert before.status_code == 201
    # Another user's sessions never overlap mine.
    assert _post(api_client_for(make_user()), started_at=start.isoformat()).status_code == 201


def test_an_idempotent_retry_returns_the_first_result_and_pays_nothing_twice():
    user = make_user()
    client = api_client_for(user)
    two_hours_ago = _ago(hours=2)
    first = _post(client, started_at=two_hours_ago, key="key-1")
    retry = _post(client, started_at=two_hours_ago, key="key-1")
    assert first.status_code == retry.status_code == 201, retry.json()
    assert first.json() == retry.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert StudySession.objects.filter(user=user).count() == 1
    assert PointsEntry.objects.filter(user=user, reason="study_session").count() == 1
    assert_points_invariant(user)
    # A new key is a new session; the same key of another user is theirs alone.
    assert _post(client, started_at=_ago(hours=6), key="key-2").json()["id"] != first.json()["id"]
    other = _post(api_client_for(make_user()), started_at=_ago(hours=2), key="key-1")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


def test_a_retry_without_started_at_is_the_same_request():
    client = api_client_for(make_user())
    first = _post(client, key="k")
    retry = _post(client, key="k")  # "just ended" is later now: still what was asked
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json() and retry.headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize(
    "change",
    [
        lambda: {"duration_minutes": 45},
        lambda: {"subject": "Geometry"},
        lambda: {"notes": "chapter 5"},
        lambda: {"started_at": _ago(hours=1)},
    ],
    ids=["duration", "subject", "notes", "start"],
)
def test_a_key_reused_with_a_different_request_is_a_422(change):
    user = make_user()
    client = api_client_for(user)
    body = {"started_at": _ago(hours=2), "notes": "chapter 4"}
    first = _post(client, key="key-1", **body)
    reused = _post(client, key="key-1", **{**body, **change()})
    assert reused.status_code == 422
    assert reused.json() == {
        "code": "idempotency_key_reused",
        "message": "This Idempotency-Key was used for a different request. "
        "Send a new key with each new study session.",
    }
    assert list(StudySession.objects.filter(user=user).values_list("pk", flat=True)) == [
        ObjectId(first.json()["id"])
    ]
    assert_points_invariant(user)


def test_a_session_logged_before_requests_were_hashed_replays_as_before():
    user = make_user()
    client = api_client_for(user)
    first = _post(client, key="old", started_at=_ago(hours=2))
    StudySession.objects.filter(pk=first.json()["id"]).update(request_hash="")
    assert _post(client, key="old", duration_minutes=50).json()["id"] == first.json()["id"]


def test_an_overlong_idempotency_key_is_a_400():
    response = _post(api_client_for(make_user()), key="k" * 256)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["fields"]


def test_the_list_is_mine_newest_first_and_paginated():
    user = make_user()
    other = make_user()
    now = timezone.now()
    for hours in (30, 10, 20):
        log_session(user, ago=datetime.timedelta(hours=hours))
    log_session(other, ago=datetime.timedelta(hours=1))
    body = api_client_for(user).get(URL, {"page_size": 2}).json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    assert len(body["results"]) == 2 and body["next"] and body["previous"] is None
    starts = [row["started_at"] for row in body["results"]]
    assert starts == sorted(starts, reverse=True)
    assert (now - datetime.datetime.fromisoformat(starts[0].replace("Z", "+00:00"))) < datetime.timedelta(
        hours=11
    )


def test_page_size_is_capped_at_100():
    user = make_user()
    history_in_bulk(user, sessions=105, last_day=timezone.now().date(), per_day=3)
    body = api_client_for(user).get(URL, {"page_size": 1000}).json()
    assert body["count"] == 105 and len(body["results"]) == 100
    assert len(api_client_for(user).get(URL).json()["results"]) == 20


def test_detail_and_delete_of_my_session():
    user = make_user()
    session = log_session(user, minutes=45, ago=datetime.timedelta(days=2))
    client = api_client_for(user)
    detail = client.get(f"{URL}{session.pk}/")
    assert detail.status_code == 200 and detail.json()["duration_minutes"] == 45
    assert client.delete(f"{URL}{session.pk}/").status_code == 204
    assert client.get(f"{URL}{session.pk}/").status_code == 404
    assert client.delete(f"{URL}{session.pk}/").status_code == 404
    user.refresh_from_db()
    assert (user.points, user.session_count, user.total_minutes) == (0, 0, 0)
    assert_points_invariant(user)


def test_another_users_session_is_a_404_for_get_and_delete():
    owner = make_user()
    session = log_session(owner, ago=datetime.timedelta(hours=4))
    intruder = api_client_for(make_user())
    for response in (intruder.get(f"{URL}{session.pk}/"), intruder.delete(f"{URL}{session.pk}/")):
        assert response.status_code == 404
        assert response.json() == {"code": "not_found", "message": "Not found."}
    assert StudySession.objects.filter(pk=session.pk).exists()
    owner.refresh_from_db()
    assert owner.points == session.points_awarded


@pytest.mark.parametrize("bad_id", ["not-an-id", "123", "6b0cb2b02ceb2231d689767", str(ObjectId())])
def test_malformed_or_unknown_ids_are_404(bad_id):
    client = api_client_for(make_user())
    assert client.get(f"{URL}{bad_id}/").status_code == 404
    assert client.delete(f"{URL}{bad_id}/").status_code == 404


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", URL),
        ("post", URL),
        ("get", f"{URL}{ObjectId()}/"),
        ("delete", f"{URL}{ObjectId()}/"),
        ("get", "/api/stats/"),
    ],
)
def test_every_endpoint_needs_a_token(method, url):
    response = getattr(APIClient(), method)(url)
    assert response.status_code == 401
    assert set(response.json()) == {"code", "message"}


def test_stats_by_day_week_and_subject_in_the_users_time_zone():
    user = make_user(time_zone="America/New_York")
    now = timezone.now()
    # Subjects differing only in case and spacing are one subject.
    log_session(user, minutes=40, subject="Linear Algebra", ago=datetime.timedelta(days=3))
    log_session(user, minutes=20, subject="  linear   ALGEBRA ", ago=datetime.timedelta(days=2))
    log_session(user, minutes=15, subject="History", ago=datetime.timedelta(days=2, hours=3))
    body = api_client_for(user).get("/api/stats/").json()
    assert len(body["by_day"]) == 30
    assert (
        body["to"]
        == timezone.localtime(now, timezone=__import__("zoneinfo").ZoneInfo("America/New_York"))
        .date()
        .isoformat()
    )
    assert sum(day["minutes"] for day in body["by_day"]) == 75
    assert sum(week["minutes"] for week in body["by_week"]) == 75
    assert all(week["week"][4:6] == "-W" for week in body["by_week"])
    assert body["by_subject"][0]["minutes"] == 60
    assert body["by_subject"][0]["subject"].casefold().split() == ["linear", "algebra"]
    assert body["by_subject"][1] == {"subject": "History", "minutes": 15}


def test_stats_range_and_iso_weeks():
    user = make_user()
    body = api_client_for(user).get("/api/stats/", {"from": "2026-01-01", "to": "2026-01-12"}).json()
    assert body["from"] == "2026-01-01" and body["to"] == "2026-01-12"
    assert len(body["by_day"]) == 12
    # 2026-01-01 is a Thursday in ISO week 1; Monday 5 January starts week 2.
    assert [week["week"] for week in body["by_week"]] == ["2026-W01", "2026-W02", "2026-W03"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"to": "01/02/2026"}, "to"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "from"),
        ({"from": "2024-01-01", "to": "2026-01-01"}, "to"),
        # The ends of Python's calendar: a 400, not an OverflowError.
        ({"from": "0001-01-01"}, "from"),
        ({"to": "0001-01-01"}, "to"),
        ({"to": "9999-12-31"}, "to"),
        ({"from": "9999-12-31", "to": "9999-12-31"}, "from"),
        ({"from": "0001-01-01", "to": "0001-01-05"}, "from"),
    ],
)
def test_stats_validation_names_the_field(params, field):
    response = api_client_for(make_user()).get("/api/stats/", params)
    assert response.status_code == 400
    assert field in response.json()["fields"]


# Query budgets: JWT authentication loads the user (1 op); reads add 1; logging or deleting a
# session adds 6 in the common case (the throttle's counter, three reads, one bulkWrite, the
# commit), however long the history; a badge, level-up or streak record costs nothing more.
# Deleting a day inside a run, or the latest day when it is a run of its own, reads one more.


def test_query_budget_of_reads(django_assert_max_num_queries):
    user = make_user()
    session = log_session(user, ago=datetime.timedelta(days=1))
    for n in range(5):
        log_session(user, ago=datetime.timedelta(days=2, hours=n))
    client = api_client_for(user)
    # auth 1 + the page (the count is the user's session_count) / the session / the month documents
    for url in (URL, f"{URL}{session.pk}/", "/api/stats/"):
        with django_assert_max_num_queries(2):
            assert client.get(url).status_code == 200


def test_query_budget_of_logging_and_deleting(django_assert_max_num_queries):
    user = make_user()
    client = api_client_for(user)
    # Warm the catalog cache and earn the early badges and level so the next log is the common case.
    for n in range(3):
        log_session(user, minutes=5, ago=datetime.timedelta(days=5, hours=n))
    # auth 1 (the user, whose progress the change builds on) + throttle; the sessions it could
    # overlap, the totals; in the transaction one bulkWrite (session, ledger, week points, user,
    # totals, quests), the commit
    with django_assert_max_num_queries(6):
        assert _post(client, duration_minutes=5, started_at=_ago(hours=1)).status_code == 201
    session_id = client.get(URL).json()["results"][0]["id"]
    # auth 1 + throttle; the session, the totals; and here, as the day deleted was the latest run
    # of one day, the run before it (one document by key), which becomes the current streak; in
    # the transaction one bulkWrite (the delete among its writes), the commit
    with django_assert_max_num_queries(7):
        assert client.delete(f"{URL}{session_id}/").status_code == 204


def test_query_budget_does_not_grow_with_history(django_assert_max_num_queries):
    user = make_user()
    client = api_client_for(user)
    history_in_bulk(user, sessions=300, last_day=timezone.now().date() - datetime.timedelta(days=6))
    for n in range(3):
        log_session(user, minutes=5, ago=datetime.timedelta(days=5, hours=n))
    with django_assert_max_num_queries(6):
        assert _post(client, duration_minutes=5, started_at=_ago(hours=1)).status_code == 201
    for url, budget in ((URL, 2), ("/api/stats/", 2), ("/api/points/", 3)):
        with django_assert_max_num_queries(budget):
            assert client.get(url).status_code == 200
