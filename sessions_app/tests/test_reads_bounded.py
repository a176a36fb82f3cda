"""What the hot endpoints read does not grow with a learner's history.

Histories of 10, 1,000 and 2,000 study sessions are written in bulk (``history_in_bulk``, then
the totals rebuilt as ``recompute_totals --fix`` does), shaped alike at their recent end. Every
command an endpoint sends is captured through the client's command listener: the operations,
the documents the server returned to the app, and, for each read, the documents the server
examined according to ``explain`` (``executionStats.totalDocsExamined``; the embedded server
counts every document the filter's index range matches, whatever the limit, so a read whose
filter is not bounded by time or key shows up here even when a limit hides it).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from gamification.services import active_catalog
from gamification.tests.factories import api_client_for, make_user
from sessions_app.tests.factories import history_in_bulk
from studymaster.maintenance import MAINTENANCE_COLLECTION
from studymaster.observability import CommandMetricsListener

pytestmark = pytest.mark.django_db

READS = {"find", "aggregate", "count", "distinct", "findAndModify"}
RETURNED_BY = {"find": "firstBatch", "aggregate": "firstBatch", "getMore": "nextBatch"}


@dataclass
class Reads:
    """What the commands of one request cost the server."""

    commands: list[str] = field(default_factory=list)
    returned: int = 0  # documents the server sent back to the app
    examined: list[int] = field(default_factory=list)  # explain's documents examined, per read

    def as_tuple(self):
        return (self.commands, self.returned, self.examined)


@pytest.fixture
def captured(monkeypatch):
    """The commands (and replies) the application's client sends while the test runs."""
    commands: list[tuple[str, dict]] = []
    replies: list[tuple[str, dict]] = []
    started, succeeded = CommandMetricsListener.started, CommandMetricsListener.succeeded

    def on_started(self, event):
        commands.append((event.command_name, dict(event.command)))
        started(self, event)

    def on_succeeded(self, event):
        replies.append((event.command_name, dict(event.reply)))
        succeeded(self, event)

    monkeypatch.setattr(CommandMetricsListener, "started", on_started)
    monkeypatch.setattr(CommandMetricsListener, "succeeded", on_succeeded)
    return commands, replies


def _explained(name: str, command: dict) -> int:
    """``explain``'s documents examined for a read the application sent (run again, alone)."""
    keep = {"find", "filter", "sort", "projection", "limit", "aggregate", "pipeline", "cursor", "hint"}
    keep |= {"findAndModify", "query", "remove", "update", "upsert", "fields", "new"}
    inner = {key: value for key, value in command.items() if key in keep or key == name}
    reply = connection.database.command("explain", inner, verbosity="executionStats")
    return reply["executionStats"]["totalDocsExamined"]


def _request(captured, send) -> Reads:
    commands, replies = captured
    commands.clear()
    replies.clear()
    send()
    reads = Reads()
    for name, command in list(commands):
        if name in ("endSessions", "explain") or command.get(name) == MAINTENANCE_COLLECTION:
            continue  # the maintenance flag: read at most once a second per process, cached
        reads.commands.append(name)
        if name in READS:
            reads.examined.append(_explained(name, command))
    for name, reply in replies:
        batch = RETURNED_BY.get(name)
        if batch:
            reads.returned += len(reply.get("cursor", {}).get(batch, []))
        elif name == "findAndModify" and reply.get("value") is not None:
            reads.returned += 1
    return reads


def _costs(captured, sessions: int) -> dict[str, Reads]:
    """What each endpoint reads for a learner with ``sessions`` prior sessions, alone in the
    database (the weekly board reads one row per learner of the week, whatever their history)."""
    get_user_model().objects.all().delete()
    user = make_user()
    today = timezone.now().date()
    history_in_bulk(user, sessions=sessions, last_day=today - datetime.timedelta(days=1))
    client = api_client_for(user)
    active_catalog()  # the per-process catalog cache, warm: a cold one costs two reads once a minute
    started = (timezone.now() - datetime.timedelta(minutes=3)).replace(microsecond=0)
    costs = {}
    logged = {}

    def log():
        response = client.post(
            "/api/sessions/",
            {"subject": "Bench", "duration_minutes": 1, "started_at": started.isoformat()},
            format="json",
        )
        assert response.status_code == 201, response.content
        logged["id"] = response.json()["id"]

    costs["POST /api/sessions/"] = _request(captured, log)
    costs["DELETE /api/sessions/{id}/"] = _request(
        captured, lambda: client.delete(f"/api/sessions/{logged['id']}/")
    )
    year = {"from": (today - datetime.timedelta(days=365)).isoformat(), "to": today.isoformat()}
    costs["GET /api/stats/ (366 days)"] = _request(captured, lambda: client.get("/api/stats/", year))
    costs["GET /api/me/"] = _request(captured, lambda: client.get("/api/me/"))
    costs["GET /api/leaderboard/?period=week"] = _request(
        captured, lambda: client.get("/api/leaderboard/", {"period": "week"})
    )
    return costs


def test_what_each_hot_endpoint_reads_does_not_grow_with_history(captured):
    short, long = _costs(captured, 10), _costs(captured, 2000)
    for name in (
        "POST /api/sessions/",
        "DELETE /api/sessions/{id}/",
        "GET /api/me/",
        "GET /api/leaderboard/?period=week",
    ):
        # The same operations and documents returned; each read examines a handful of documents
        # (a time window's or a key's, which may hold one more session at some hours of the day),
        # never a share of the 2,000 sessions.
        assert (short[name].commands, short[name].returned) == (long[name].commands, long[name].returned), (
            name
        )
        assert max(long[name].examined, default=0) <= 10, (name, long[name].examined)
    # Logging: the user (authentication), the throttle's count, the overlapping sessions, the
    # totals (outside any transaction: the user as authentication read it is what the change
    # builds on, and the write checks its version); one write; the commit.
    # The weekly board: the user (authentication), then the week's listed rows, in one read.
    assert long["GET /api/leaderboard/?period=week"].commands == ["aggregate", "find"]
    post = long["POST /api/sessions/"]
    assert post.commands == ["aggregate", "findAndModify", "find", "find", "bulkWrite", "commitTransaction"]
    assert post.returned <= 10 and max(post.examined) <= 10


def test_a_years_stats_read_at_most_the_thirteen_months_it_spans(captured):
    """At 10 sessions the year holds a month or two; from about 400 on, all thirteen: no more."""
    short, long, longer = (_costs(captured, sessions) for sessions in (10, 1000, 2000))
    name = "GET /api/stats/ (366 days)"
    assert long[name].as_tuple() == longer[name].as_tuple()
    # The user (authentication), then the month documents: 13 for a year, examined and returned.
    assert longer[name].as_tuple() == (["aggregate", "find"], 1 + 13, [1, 13])
    assert short[name].returned < longer[name].returned


def test_the_upserts_of_every_change_examine_one_document_however_long_the_history():
    """Every change upserts by key its quest periods (one a day or a week per quest), and its
    achievements and badges when it earns them: a read of all the user's documents, or of the
    collection, would grow with the history."""
    from gamification.models import Achievement, QuestProgress, UserBadge
    from studymaster.db import db_date

    user = make_user()
    first = datetime.date(2024, 1, 1)
    QuestProgress.objects.bulk_create(
        QuestProgress(
            user=user,
            quest_id=code,
            period_start=first + datetime.timedelta(days=n),
            period_end=first + datetime.timedelta(days=n),
            target=30,
            time_zone="UTC",
        )
        for n in range(300)
        for code in ("daily_30_minutes", "weekly_5_days")
    )
    Achievement.objects.bulk_create(
        Achievement(user=user, kind=Achievement.Kind.QUEST_COMPLETED, title="t", reference=f"quest:daily:{n}")
        for n in range(300)
    )
    UserBadge.objects.bulk_create(
        UserBadge(user=user, badge_id=code) for code in ("first_session", "hour_one")
    )
    filters = {
        QuestProgress: {
            "user_id": user.pk,
            "quest_id": "daily_30_minutes",
            "period_start": db_date(first + datetime.timedelta(days=77)),
        },
        Achievement: {
            "user_id": user.pk,
            "kind": Achievement.Kind.QUEST_COMPLETED,
            "reference": "quest:daily:7",
        },
        UserBadge: {"user_id": user.pk, "badge_id": "hour_one"},
    }
    for model, selector in filters.items():
        assert _explained("find", {"find": model._meta.db_table, "filter": selector}) == 1, model
