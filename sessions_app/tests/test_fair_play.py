"""The fair-play rules (docs/gamification.md), against the attacks of the security review
(issue 14, findings 3 and 4), through the HTTP API as an attacker would send them."""

from __future__ import annotations

import datetime
from collections import Counter

import pytest
from bson import ObjectId
from django.conf import settings
from django.utils import timezone

from gamification.models import PointsEntry, Quest, UserBadge
from gamification.tests.factories import assert_points_invariant
from sessions_app.models import StudySession
from sessions_app.tests.factories import api_client_for, log_session, make_user

pytestmark = pytest.mark.django_db

URL = "/api/sessions/"


def _farm(client, now: datetime.datetime) -> Counter:
    """Finding 3: 59 back-to-back sessions of 720 minutes ending now (so reaching back 29.5
    days), oldest first, and one more that ends 12 h in the future. Returns the statuses."""
    statuses = Counter()
    for number in range(59):
        started = now - datetime.timedelta(minutes=720 * (59 - number))
        body = {
            "subject": f"Subject {number % 6}",
            "duration_minutes": 720,
            "started_at": started.isoformat(),
        }
        statuses[client.post(URL, body, format="json").status_code] += 1
    future = {"subject": "Tomorrow", "duration_minutes": 720, "started_at": now.isoformat()}
    statuses[client.post(URL, future, format="json").status_code] += 1
    return statuses


def _figures(farmer, client) -> dict:
    me = client.get("/api/me/").json()
    boards = {
        period: client.get("/api/leaderboard/", {"period": period}).json()["results"]
        for period in ("week", "all")
    }
    return {
        "points": me["points"],
        "level": me["level"],
        "current_streak": me["current_streak"],
        "badges": UserBadge.objects.filter(user=farmer).count(),
        **{
            f"{period}_board": [(row["username"], row["points"]) for row in rows]
            for period, rows in boards.items()
        },
    }


def test_farming_pays_at_most_the_daily_cap_and_the_catalogues_rewards_per_day():
    honest = make_user(username="honest")
    now = timezone.now().replace(microsecond=0)
    for day in range(5):
        log_session(honest, minutes=90, started_at=now - datetime.timedelta(days=day, hours=3), now=now)
    farmer = make_user(username="farmer")
    client = api_client_for(farmer)

    statuses = _farm(client, now)

    # Before the rules: 60 of 60 accepted, 43,280 points, level 29, a 30-day streak, all 8
    # badges, first on both boards (the honest learner had 470).
    # Sessions that ended more than 7 days ago, and the one that ends in 12 h, are refused.
    assert statuses == Counter({201: 14, 400: 46}), statuses
    days = Counter(StudySession.objects.filter(user=farmer).values_list("local_date", flat=True))
    assert len(days) == 8 and max(days.values()) == 2  # 12 h sessions: two a day at most
    minutes_paid = Counter()
    sessions = dict(StudySession.objects.filter(user=farmer).values_list("pk", "local_date"))
    for reference, amount in PointsEntry.objects.filter(user=farmer, reason="study_session").values_list(
        "reference", "amount"
    ):
        minutes_paid[sessions[ObjectId(reference)]] += amount
    assert max(minutes_paid.values()) <= settings.STUDY_DAILY_CAP_MINUTES
    # At most the cap and the daily quests' rewards a day, and the weekly ones' a week.
    quests = Quest.objects.filter(is_active=True)
    daily = sum(quest.reward_points for quest in quests if quest.period == "daily")
    weekly = sum(quest.reward_points for quest in quests if quest.period == "weekly")
    weeks = {day.isocalendar()[:2] for day in days}
    figures = _figures(farmer, client)
    assert figures["points"] <= len(days) * (settings.STUDY_DAILY_CAP_MINUTES + daily) + len(weeks) * weekly
    assert figures["points"] == 8 * 720 + 20 + 50 and figures["level"] == 11  # 30 min today, 5 h this week
    # The weekly board counts the study done this week (Monday to Wednesday), by when it happened.
    assert figures["week_board"][0] == ("farmer", 3 * 720 + 20 + 50)
    assert_points_invariant(farmer)


# Finding 4: five cycles of (time zone +14, log, time zone -12, delete) left 100 points.
PLUS_14, MINUS_12 = "Pacific/Kiritimati", "Etc/GMT+12"


def _cycle(client, set_time_zone) -> None:
    set_time_zone(PLUS_14)
    session = client.post(URL, {"subject": "Maths", "duration_minutes": 30}, format="json").json()
    set_time_zone(MINUS_12)
    assert client.delete(f"{URL}{session['id']}/").status_code == 204


def test_the_time_zone_cycle_through_the_api_leaves_no_points():
    user = make_user(time_zone="UTC")
    client = api_client_for(user)
    refusals = []

    def set_time_zone(zone):
        response = client.patch("/api/me/", {"time_zone": zone}, format="json")
        if response.status_code != 200:
            refusals.append(response.json()["fields"]["time_zone"][0])

    for _ in range(5):
        _cycle(client, set_time_zone)

    # The first change went through; each change back within the day was refused (asking for
    # the zone one already has is no change).
    assert len(refusals) == 5 and all("once every 24 hours" in message for message in refusals)
    user.refresh_from_db()
    assert (user.points, user.time_zone, StudySession.objects.filter(user=user).count()) == (0, PLUS_14, 0)
    assert_points_invariant(user)


def test_the_time_zone_cycle_leaves_no_points_even_when_staff_change_the_zone_each_time():
    user = make_user(time_zone="UTC")
    client = api_client_for(user)

    def set_time_zone(zone):  # as the admin's change form does: no 24-hour limit
        user.time_zone = zone
        user.save(update_fields=["time_zone"])

    for _ in range(5):
        _cycle(client, set_time_zone)

    user.refresh_from_db()
    assert user.points == 0
    rewards = PointsEntry.objects.filter(user=user, reason__in=["quest_reward", "quest_reward_revoked"])
    assert sorted(rewards.values_list("amount", flat=True)) == [-20] * 5 + [20] * 5
    assert_points_invariant(user)


# Study session writes are throttled per account (THROTTLE_RATE_STUDY_SESSION).


def test_study_session_writes_are_throttled_per_account_and_reads_are_not(settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, "study_session": "3/min"},
    }
    user = make_user()
    client = api_client_for(user)
    now = timezone.now()
    first, second = (
        client.post(
            URL,
            {
                "subject": "Maths",
                "duration_minutes": 5,
                "started_at": (now - datetime.timedelta(hours=h)).isoformat(),
            },
            format="json",
        )
        for h in (2, 3)
    )
    assert (first.status_code, second.status_code) == (201, 201)
    assert client.delete(f"{URL}{first.json()['id']}/").status_code == 204  # the third write

    refused = client.post(URL, {"subject": "Maths", "duration_minutes": 5}, format="json")
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled" and 0 < int(refused["Retry-After"]) <= 60
    assert client.delete(f"{URL}{second.json()['id']}/").status_code == 429
    assert (
        client.get(URL).status_code == 200 and client.get(f"{URL}{second.json()['id']}/").status_code == 200
    )
    # Another account has its own count; the services (the demo's, the benches') have none.
    assert (
        api_client_for(make_user())
        .post(URL, {"subject": "Maths", "duration_minutes": 5}, format="json")
        .status_code
        == 201
    )
    log_session(user, minutes=5, now=now)
    assert StudySession.objects.filter(user=user).count() == 2
