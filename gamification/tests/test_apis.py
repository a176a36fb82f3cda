"""The game's read endpoints: ledger, badges, quests, achievements, leaderboard."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import user_profile_update
from gamification.models import PointsEntry, WeekPoints
from gamification.services import points_award
from gamification.tests.factories import api_client_for, make_user, record_study

pytestmark = pytest.mark.django_db

READ_URLS = ["/api/points/", "/api/badges/", "/api/quests/", "/api/achievements/", "/api/leaderboard/"]


@pytest.mark.parametrize("url", READ_URLS)
def test_every_endpoint_needs_a_token(url):
    assert APIClient().get(url).status_code == 401


def test_points_ledger_is_mine_newest_first_and_paginated():
    user = make_user()
    record_study(user, minutes=10, ago=datetime.timedelta(days=2))
    record_study(user, minutes=15, ago=datetime.timedelta(days=1))
    record_study(make_user(), minutes=99, ago=datetime.timedelta(days=1))
    body = api_client_for(user).get("/api/points/", {"page_size": 1}).json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == PointsEntry.objects.filter(user=user).count()
    [entry] = body["results"]
    assert set(entry) == {"id", "amount", "reason", "reference", "created_at", "studied_at"}
    everything = api_client_for(user).get("/api/points/", {"page_size": 100}).json()["results"]
    created = [row["created_at"] for row in everything]
    assert created == sorted(created, reverse=True)
    assert 99 not in [row["amount"] for row in everything]


def test_badge_catalog_shows_what_i_earned():
    user = make_user()
    record_study(user, minutes=60, ago=datetime.timedelta(hours=2))
    badges = {badge["code"]: badge for badge in api_client_for(user).get("/api/badges/").json()}
    assert len(badges) >= 8
    assert badges["first_session"]["earned"] and badges["first_session"]["earned_at"]
    assert badges["hours_1"]["earned"]
    assert not badges["hours_10"]["earned"] and badges["hours_10"]["earned_at"] is None
    others = {b["code"]: b for b in api_client_for(make_user()).get("/api/badges/").json()}
    assert not others["first_session"]["earned"]


def test_achievements_list_is_mine_and_paginated():
    user = make_user()
    record_study(user, minutes=120, ago=datetime.timedelta(hours=3))
    body = api_client_for(user).get("/api/achievements/").json()
    kinds = {row["kind"] for row in body["results"]}
    assert {"badge_earned", "level_up", "quest_completed"} <= kinds
    assert body["count"] == len(body["results"])
    assert api_client_for(make_user()).get("/api/achievements/").json()["count"] == 0


def test_leaderboard_ranks_highest_first_and_respects_the_opt_out():
    ada, bob, cy = make_user(username="ada"), make_user(username="bob"), make_user(username="cy")
    hidden = make_user(username="hidden", leaderboard_opt_out=True)
    for user, minutes in ((ada, 20), (bob, 45), (cy, 20), (hidden, 200)):
        record_study(user, minutes=minutes, ago=datetime.timedelta(minutes=minutes + 5))
    for period in ("week", "all"):
        body = api_client_for(ada).get("/api/leaderboard/", {"period": period}).json()
        rows = [(row["rank"], row["username"]) for row in body["results"]]
        assert rows == [(1, "bob"), (2, "ada"), (3, "cy")], period
    page = api_client_for(ada).get("/api/leaderboard/", {"period": "all", "page": 2, "page_size": 2}).json()
    assert page["count"] == 3 and [(r["rank"], r["username"]) for r in page["results"]] == [(3, "cy")]


def test_weekly_leaderboard_follows_an_opt_out_as_soon_as_it_is_made():
    ada, bob = make_user(username="ada"), make_user(username="bob")
    for user, minutes in ((ada, 20), (bob, 45)):
        record_study(user, minutes=minutes, ago=datetime.timedelta(days=1, minutes=minutes + 5))
        record_study(user, minutes=minutes, ago=datetime.timedelta(minutes=minutes + 5))
    client = api_client_for(ada)

    def board() -> list[str]:
        return [row["username"] for row in client.get("/api/leaderboard/?period=week").json()["results"]]

    assert board() == ["bob", "ada"]
    user_profile_update(user=bob, changes={"leaderboard_opt_out": True})
    assert board() == ["ada"]  # every one of bob's weeks, this one included
    assert set(WeekPoints.objects.filter(user=bob).values_list("listed", flat=True)) == {False}
    record_study(bob, minutes=5, ago=datetime.timedelta(minutes=2))  # a new week row stays unlisted
    assert board() == ["ada"]
    user_profile_update(user=bob, changes={"leaderboard_opt_out": False})
    assert board() == ["bob", "ada"]


def test_weekly_leaderboard_counts_only_this_iso_weeks_ledger():
    ada, bob = make_user(username="ada"), make_user(username="bob")
    record_study(ada, minutes=10, ago=datetime.timedelta(minutes=20))
    record_study(bob, minutes=5, ago=datetime.timedelta(minutes=20))
    old = PointsEntry.objects.filter(user=bob).first()
    # An entry for before this week's Monday 00:00 UTC does not count for the week.
    last_week = timezone.now() - datetime.timedelta(days=8)
    points_award(user=bob, amount=500, reason="admin_adjustment", reference="credit", studied_at=last_week)
    week = api_client_for(ada).get("/api/leaderboard/?period=week").json()["results"]
    assert [row["username"] for row in week] == ["ada", "bob"]
    assert week[1]["points"] == old.amount + sum(
        PointsEntry.objects.filter(user=bob, reason="quest_reward").values_list("amount", flat=True)
    )
    overall = api_client_for(ada).get("/api/leaderboard/?period=all").json()["results"]
    assert overall[0]["username"] == "bob"


def test_weekly_leaderboard_counts_study_by_when_it_happened_not_when_it_was_logged():
    ada, bob = make_user(username="ada"), make_user(username="bob")
    now = timezone.now()  # a Wednesday (the midweek clock)
    monday = datetime.datetime.combine(
        now.date() - datetime.timedelta(days=2), datetime.time.min, tzinfo=datetime.UTC
    )
    # Bob logs 300 minutes studied last Sunday evening (UTC) now; Ada 20 minutes this morning.
    record_study(bob, minutes=300, ago=now - (monday - datetime.timedelta(hours=6)), now=now)
    record_study(ada, minutes=20, ago=datetime.timedelta(hours=3), now=now)
    week = api_client_for(ada).get("/api/leaderboard/?period=week").json()["results"]
    assert [(row["username"], row["points"]) for row in week] == [("ada", 20)]
    overall = api_client_for(ada).get("/api/leaderboard/?period=all").json()["results"]
    assert [row["username"] for row in overall] == ["bob", "ada"]
    # The ledger says when each entry's study happened.
    [entry] = api_client_for(bob).get("/api/points/").json()["results"]
    assert entry["studied_at"] < monday.isoformat().replace("+00:00", "Z") < entry["created_at"]


def test_leaderboard_period_is_validated():
    response = api_client_for(make_user()).get("/api/leaderboard/", {"period": "month"})
    assert response.status_code == 400
    assert "period" in response.json()["fields"]


def test_query_budget_of_reads(django_assert_max_num_queries):
    user = make_user()
    for n in range(4):
        record_study(user, minutes=30, ago=datetime.timedelta(days=n, hours=1))
    client = api_client_for(user)
    for url in [*READ_URLS, "/api/leaderboard/?period=all"]:
        with django_assert_max_num_queries(3):  # auth 1 + at most 2
            assert client.get(url).status_code == 200, url
