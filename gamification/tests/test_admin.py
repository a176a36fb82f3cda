"""The game's admin: every model listed, computed records read-only, points adjusted only through the ledger."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse

from accounts.models import User
from gamification.models import PointsEntry
from gamification.tests.factories import assert_points_invariant, make_user, record_study

pytestmark = pytest.mark.django_db

MODELS = [
    ("gamification", "pointsentry"),
    ("gamification", "badge"),
    ("gamification", "userbadge"),
    ("gamification", "quest"),
    ("gamification", "questprogress"),
    ("gamification", "achievement"),
]


@pytest.fixture
def admin_client(client):
    admin = User.objects.create_superuser("boss", "boss@example.com", "a-long-passphrase")
    client.force_login(admin)
    return client


@pytest.mark.parametrize(("app", "model"), MODELS)
def test_every_changelist_and_search_works(admin_client, app, model):
    learner = make_user(username="searchme")
    record_study(learner, minutes=70, ago=datetime.timedelta(hours=2))
    url = reverse(f"admin:{app}_{model}_changelist")
    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url, {"q": "searchme"}).status_code == 200


def test_computed_records_cannot_be_added_or_changed(admin_client):
    learner = make_user()
    record_study(learner, minutes=30, ago=datetime.timedelta(hours=2))
    assert admin_client.get(reverse("admin:gamification_userbadge_add")).status_code == 403
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


def test_the_adjustment_form_shows_the_services_refusal_on_its_field(admin_client):
    learner = make_user()
    page = admin_client.post(
        reverse("admin:gamification_pointsentry_add"),
        {"user": str(learner.pk), "amount": "2000000", "note": "far too generous"},
    )
    assert page.status_code == 200
    assert page.context["adminform"].form.errors == {
        "amount": ["The amount must be a non-zero whole number within ±1000000."]
    }
    assert not PointsEntry.objects.filter(user=learner).exists()
