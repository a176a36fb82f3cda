"""Parallel study session logs for one user: nothing lost, nothing paid twice, no overlap slips in.

Each thread gets its own Django connection (and so its own transaction); they share the
server. transaction=True: the threads must see each other's committed writes.
"""

from __future__ import annotations

import datetime
import threading
from collections import Counter

import pytest
from django.db import connections
from django.utils import timezone

from gamification.models import Achievement, PointsEntry, QuestProgress, UserBadge
from gamification.tests.factories import assert_points_invariant, ledger_sum
from sessions_app.models import StudySession
from sessions_app.tests.factories import api_client_for, make_user

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PARALLEL = 40


@pytest.fixture(autouse=True)
def _study_session_writes_unthrottled(settings):
    """These tests are about concurrency, not throttling: they raise THROTTLE_RATE_STUDY_SESSION
    (60/min by default, from the environment at startup) for themselves, so that a lower
    default or more threads never turn their writes into 429s."""
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, "study_session": "10000/min"},
    }


def _in_parallel(call, count=PARALLEL):
    """Run call(i) in ``count`` threads released at once; return the results by i."""
    barrier = threading.Barrier(count)
    results: dict[int, object] = {}

    def run(i):
        try:
            barrier.wait()
            results[i] = call(i)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return results


def test_40_parallel_logs_lose_no_points_and_pay_nothing_twice():
    user = make_user()
    now = timezone.now().replace(second=0, microsecond=0)

    def log(i):
        client = api_client_for(user)
        started = now - datetime.timedelta(minutes=11 * (i + 1))
        response = client.post(
            "/api/sessions/",
            {"subject": f"Subject {i % 6}", "duration_minutes": 10, "started_at": started.isoformat()},
            format="json",
        )
        return response.status_code

    results = _in_parallel(log)
    assert Counter(results.values()) == Counter({201: PARALLEL}), results

    user.refresh_from_db()
    assert StudySession.objects.filter(user=user).count() == PARALLEL
    assert user.session_count == PARALLEL
    assert user.total_minutes == 10 * PARALLEL
    assert_points_invariant(user)
    entries = list(PointsEntry.objects.filter(user=user))
    assert sum(e.amount for e in entries if e.reason == "study_session") == 10 * PARALLEL
    rewards = Counter(e.reference.rsplit(":", 1)[0] for e in entries if e.reason == "quest_reward")
    assert rewards and max(rewards.values()) == 1  # each quest period paid at most once
    completed = QuestProgress.objects.filter(user=user, completed=True).count()
    assert completed == len(rewards)
    badges = list(UserBadge.objects.filter(user=user).values_list("badge_id", flat=True))
    assert len(badges) == len(set(badges))
    assert {"first_session", "hours_1", "variety_5"} <= set(badges)
    earned = Achievement.objects.filter(user=user, kind="badge_earned").count()
    assert earned == len(badges)
    assert user.points == 10 * PARALLEL + sum(e.amount for e in entries if e.reason == "quest_reward"), (
        "points = minutes + quest rewards"
    )


def test_40_parallel_logs_of_the_same_time_let_exactly_one_in():
    user = make_user()
    started = (timezone.now() - datetime.timedelta(hours=2)).isoformat()

    def log(i):
        response = api_client_for(user).post(
            "/api/sessions/",
            {"subject": "Chemistry", "duration_minutes": 30 + i, "started_at": started},
            format="json",
        )
        return response.status_code, response.json()

    results = _in_parallel(log)
    statuses = Counter(status for status, _ in results.values())
    assert statuses == Counter({201: 1, 400: PARALLEL - 1}), results
    refusals = [body for status, body in results.values() if status == 400]
    assert all("overlaps" in body["fields"]["started_at"][0] for body in refusals)
    assert StudySession.objects.filter(user=user).count() == 1
    assert_points_invariant(user)


def test_40_parallel_retries_with_one_idempotency_key_make_one_session():
    user = make_user()
    started = (timezone.now() - datetime.timedelta(hours=1)).isoformat()

    def log(i):
        response = api_client_for(user).post(
            "/api/sessions/",
            {"subject": "Biology", "duration_minutes": 25, "started_at": started},
            format="json",
            HTTP_IDEMPOTENCY_KEY="retry-me",
        )
        return response.status_code, response.json()["id"]

    results = _in_parallel(log)
    assert {status for status, _ in results.values()} == {201}, results
    assert len({session_id for _, session_id in results.values()}) == 1
    assert StudySession.objects.filter(user=user).count() == 1
    assert ledger_sum(user) == 25 + 0  # no quest completes with 25 minutes and one session
    assert_points_invariant(user)


def test_parallel_deletes_of_one_session_take_its_points_back_once():
    user = make_user()
    client = api_client_for(user)
    started = (timezone.now() - datetime.timedelta(days=2)).isoformat()
    session_id = client.post(
        "/api/sessions/", {"subject": "Art", "duration_minutes": 40, "started_at": started}, format="json"
    ).json()["id"]

    results = _in_parallel(
        lambda i: api_client_for(user).delete(f"/api/sessions/{session_id}/").status_code, 10
    )
    assert Counter(results.values()) == Counter({204: 1, 404: 9}), results
    assert PointsEntry.objects.filter(user=user, reason="study_session_deleted").count() == 1
    assert_points_invariant(user)
