"""The admin: every model listed, computed records read-only, points adjusted only through the ledger."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse

from accounts.models import User
from gamification.models import PointsEntry
from gamification.tests.factories import assert_points_invariant, make_user
from sessions_app.models import StudySession
from sessions_app.tests.factories import log_session

pytestmark = pytest.mark.django_db

MODELS = [
    ("gamification", "pointsentry"),
    ("gamification", "badge"),
    ("gamification", "userbadge"),
    ("gamification", "quest"),
    ("gamification", "questprogress"),
    ("gamification", "achievement"),
    ("sessions_app", "studysession"),
]


@pytest.fixture
def admin_client(client):
    admin = User.objects.create_superuser("boss", "boss@example.com", "a-long-passphrase")
    client.force_login(admin)
    return client


@pytest.mark.parametrize(("app", "model"), MODELS)
def test_every_changelist_and_search_works(admin_client, app, model):
    learner = make_user(username="searchme")
    log_session(learner, minutes=70, ago=datetime.timedelta(hours=2))
    url = reverse(f"admin:{app}_{model}_changelist")
    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url, {"q": "searchme"}).status_code == 200


def test_computed_records_cannot_be_added_or_changed(admin_client):
    learner = make_user()
    session = log_session(learner, minutes=30, ago=datetime.timedelta(hours=2))
    assert admin_client.get(reverse("admin:sessions_app_studysession_add")).status_code == 403
    assert admin_client.get(reverse("admin:gamification_userbadge_add")).status_code == 403
    change = admin_client.get(reverse("admin:sessions_app_studysession_change", args=[session.pk]))
    assert change.status_code == 200 and b'name="duration_minutes"' not in change.content
    entry = PointsEntry.objects.filter(user=learner).first()
    page = admin_client.get(reverse("admin:gamification_pointsentry_change", args=[entry.pk]))
    assert page.status_code == 200 and b'name="amount"' not in page.content


def test_adding_a_ledger_entry_is_the_points_adjustment(admin_client):
    learner = make_user()
    response = admin_client.post(
        reverse("admin:gamification_pointsentry_add"),
        {"user": str(learner.pk), "amount": "250", "note": "contest prize"},
    )
    assert response.status_code == 302, response.content[:2000]
    entry = PointsEntry.objects.get(user=learner)
    assert (entry.amount, entry.reason, entry.note) == (250, "admin_adjustment", "boss: contest prize")
    learner.refresh_from_db()
    assert (learner.points, learner.level) == (250, 2)
    assert_points_invariant(learner)
    refused = admin_client.post(
        reverse("admin:gamification_pointsentry_add"), {"user": str(learner.pk), "amount": "0", "note": "x"}
    )
    assert refused.status_code == 200 and PointsEntry.objects.filter(user=learner).count() == 1


def test_deleting_a_session_in_the_admin_takes_its_points_back(admin_client):
    learner = make_user()
    session = log_session(learner, minutes=30, ago=datetime.timedelta(days=3))
    response = admin_client.post(
        reverse("admin:sessions_app_studysession_delete", args=[session.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not StudySession.objects.filter(pk=session.pk).exists()
    learner.refresh_from_db()
    assert learner.points == 0
    assert_points_invariant(learner)


def test_sessions_can_be_filtered_by_user(admin_client):
    ada, bob = make_user(), make_user()
    log_session(ada, subject="Ada's subject", ago=datetime.timedelta(hours=2))
    log_session(bob, subject="Bob's subject", ago=datetime.timedelta(hours=2))
    page = admin_client.get(
        reverse("admin:sessions_app_studysession_changelist"), {"user__id__exact": str(ada.pk)}
    )
    assert page.status_code == 200
    assert b"Ada&#x27;s subject" in page.content and b"Bob&#x27;s subject" not in page.content
