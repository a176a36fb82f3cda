"""The study sessions' admin: read-only, searchable, filtered by user; deleting takes the points back."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse

from gamification.tests.factories import assert_points_invariant
from sessions_app.models import StudySession
from sessions_app.tests.factories import log_session, make_user

pytestmark = pytest.mark.django_db


def test_the_changelist_and_its_search_work(admin_client):
    learner = make_user(username="searchme")
    log_session(learner, minutes=70, ago=datetime.timedelta(hours=2))
    url = reverse("admin:sessions_app_studysession_changelist")
    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url, {"q": "searchme"}).status_code == 200


def test_study_sessions_cannot_be_added_or_changed(admin_client):
    session = log_session(make_user(), minutes=30, ago=datetime.timedelta(hours=2))
    assert admin_client.get(reverse("admin:sessions_app_studysession_add")).status_code == 403
    change = admin_client.get(reverse("admin:sessions_app_studysession_change", args=[session.pk]))
    assert change.status_code == 200 and b'name="duration_minutes"' not in change.content


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
