"""GET/PATCH/DELETE /api/me/: the profile of request.user, and nobody else's."""

import datetime
import zoneinfo

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from accounts.models import User
from accounts.tests.factories import PASSWORD, client_for, user_create

pytestmark = pytest.mark.django_db

PROFILE_FIELDS = {
    "username",
    "email",
    "display_name",
    "time_zone",
    "leaderboard_opt_out",
    "points",
    "level",
    "points_to_next_level",
    "current_streak",
    "longest_streak",
    "total_minutes",
    "session_count",
}


def test_me_returns_the_profile_with_progress_and_level_arithmetic():
    user = user_create(username="ada", display_name="Ada L.", time_zone="Europe/London")
    today_in_london = timezone.now().astimezone(zoneinfo.ZoneInfo("Europe/London")).date()
    User.objects.filter(pk=user.pk).update(
        points=250,
        level=2,
        current_streak=3,
        longest_streak=9,
        last_study_date=today_in_london,
        total_minutes=250,
        session_count=7,
    )
    client, _ = client_for(user)
    body = client.get("/api/me/").json()
    assert set(body) == PROFILE_FIELDS
    assert body["username"] == "ada" and body["display_name"] == "Ada L."
    assert body["time_zone"] == "Europe/London" and body["leaderboard_opt_out"] is False
    # Level 3 starts at 300 points (50·3·2), so 50 to go.
    assert (body["points"], body["level"], body["points_to_next_level"]) == (250, 2, 50)
    assert (body["current_streak"], body["longest_streak"]) == (3, 9)
    assert (body["total_minutes"], body["session_count"]) == (250, 7)


def test_me_is_the_callers_own_profile():
    ada, grace = user_create(username="ada"), user_create(username="grace")
    client, _ = client_for(grace)
    assert client.get("/api/me/").json()["username"] == "grace"
    client.patch("/api/me/", {"display_name": "G"}, format="json")
    ada.refresh_from_db()
    assert ada.display_name == ""


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_me_needs_a_token(method):
    response = getattr(APIClient(), method)("/api/me/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_forged_token_is_a_401_in_the_error_shape():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer eyJhbGciOiJIUzI1NiJ9.e30.forged")
    response = client.get("/api/me/")
    assert response.status_code == 401
    assert response.json() == {
        "code": "token_not_valid",
        "message": "Given token not valid for any token type",
    }


def test_patch_changes_the_writable_fields():
    user = user_create(username="ada")
    client, _ = client_for(user)
    response = client.patch(
        "/api/me/",
        {
            "display_name": "Ada",
            "time_zone": "America/New_York",
            "leaderboard_opt_out": True,
            "email": " Ada@Lovelace.ORG ",
            "current_password": PASSWORD,
        },
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["display_name"] == "Ada" and body["time_zone"] == "America/New_York"
    assert body["leaderboard_opt_out"] is True and body["email"] == "ada@lovelace.org"
    user.refresh_from_db()
    assert (user.display_name, user.time_zone, user.leaderboard_opt_out, user.email) == (
        "Ada",
        "America/New_York",
        True,
        "ada@lovelace.org",
    )


def _clock_ahead(monkeypatch, delta):
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + delta)


def test_the_time_zone_changes_at_most_once_in_24_hours(monkeypatch):
    user = user_create(username="ada", time_zone="Europe/Berlin")
    client, _ = client_for(user)
    assert client.patch("/api/me/", {"time_zone": "Pacific/Kiritimati"}, format="json").status_code == 200
    user.refresh_from_db()
    changed_at = user.time_zone_changed_at
    assert abs((timezone.now() - changed_at).total_seconds()) < 60

    again = client.patch("/api/me/", {"time_zone": "Etc/GMT+12", "display_name": "A"}, format="json")

    assert again.status_code == 400
    [message] = again.json()["fields"]["time_zone"]
    assert message.startswith("The time zone can change once every 24 hours; next from ")
    user.refresh_from_db()
    assert (user.time_zone, user.display_name) == ("Pacific/Kiritimati", "")  # nothing written
    # Sending the zone it already has is no change; other fields still change.
    same = client.patch("/api/me/", {"time_zone": "Pacific/Kiritimati", "display_name": "A"}, format="json")
    assert same.status_code == 200
    _clock_ahead(monkeypatch, datetime.timedelta(hours=24))
    assert client.patch("/api/me/", {"time_zone": "Etc/GMT+12"}, format="json").status_code == 200
    user.refresh_from_db()
    assert user.time_zone == "Etc/GMT+12" and user.time_zone_changed_at > changed_at


def test_staff_edits_of_the_time_zone_do_not_count():
    user = user_create(username="ada")
    user.time_zone = "Asia/Tokyo"
    user.save()  # as the admin's change form does
    user.refresh_from_db()
    assert user.time_zone_changed_at is None
    client, _ = client_for(user)
    assert client.patch("/api/me/", {"time_zone": "Europe/Paris"}, format="json").status_code == 200


def test_a_racing_time_zone_change_that_got_in_first_wins():
    user = user_create(username="ada")
    stale = User.objects.get(pk=user.pk)  # read before the other request wrote
    services.user_profile_update(user=user, changes={"time_zone": "Asia/Tokyo"})
    with pytest.raises(ValidationError) as refused:
        services.user_profile_update(user=stale, changes={"time_zone": "Europe/Paris"})
    assert "once every 24 hours" in refused.value.message_dict["time_zone"][0]
    assert User.objects.get(pk=user.pk).time_zone == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"points": 1_000_000}, "points"),
        ({"level": 99}, "level"),
        ({"current_streak": 400}, "current_streak"),
        ({"username": "someone-else"}, "username"),
        ({"is_staff": True}, "is_staff"),
        ({"display_name": "ok", "points": 5}, "points"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": "utc "}, "time_zone"),
        ({"email": "not-an-email"}, "email"),
        ({"display_name": "x" * 101}, "display_name"),
        ({"leaderboard_opt_out": "maybe"}, "leaderboard_opt_out"),
        ({"display_name": None}, "display_name"),
    ],
)
def test_patch_refuses_read_only_unknown_and_bad_fields_and_changes_nothing(payload, field):
    user = user_create(username="ada")
    client, _ = client_for(user)
    response = client.patch("/api/me/", payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and field in body["fields"]
    user.refresh_from_db()
    assert (user.points, user.level, user.username, user.is_staff, user.display_name) == (
        0,
        1,
        "ada",
        False,
        "",
    )


def test_patch_refuses_an_email_another_account_has():
    user_create(username="grace", email="grace@example.com")
    user = user_create(username="ada", email="ada@example.com")
    client, _ = client_for(user)
    response = client.patch(
        "/api/me/", {"email": "GRACE@example.com", "current_password": PASSWORD}, format="json"
    )
    assert response.status_code == 400 and "email" in response.json()["fields"]
    # Re-sending one's own address, in another case, is fine, and changes nothing: no password.
    assert client.patch("/api/me/", {"email": "ADA@example.com"}, format="json").status_code == 200


@pytest.mark.parametrize("current_password", [None, "", "wrong-password"])
def test_a_new_email_needs_the_current_password_before_anything_is_said_about_it(current_password):
    user_create(username="grace", email="grace@example.com")
    user = user_create(username="ada", email="ada@example.com")
    client, _ = client_for(user)
    payload = {"email": "grace@example.com"}
    if current_password is not None:
        payload["current_password"] = current_password
    response = client.patch("/api/me/", payload, format="json")
    assert response.status_code == 400
    body = response.json()
    # Whether grace@example.com is taken is not told: the password is checked first.
    assert set(body["fields"]) == {"current_password"}
    user.refresh_from_db()
    assert user.email == "ada@example.com"


def test_the_current_password_is_write_only_and_not_a_profile_field():
    user = user_create(username="ada", email="ada@example.com")
    client, _ = client_for(user)
    response = client.patch(
        "/api/me/", {"email": "ada@lovelace.org", "current_password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    assert "current_password" not in response.json() and response.json()["email"] == "ada@lovelace.org"
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_patch_leaves_progress_written_meanwhile_alone(monkeypatch):
    user = user_create()
    client, _ = client_for(user)
    # Points land (a gamification service) after authentication loaded the user...
    original_get = User.objects.get

    def get_then_award(*args, **kwargs):
        loaded = original_get(*args, **kwargs)
        User.objects.filter(pk=loaded.pk).update(points=42)
        return loaded

    monkeypatch.setattr(User.objects, "get", get_then_award)
    response = client.patch("/api/me/", {"display_name": "Ada"}, format="json")
    assert response.status_code == 200
    user.refresh_from_db()
    # ... and the profile update did not write the stale 0 over them.
    assert (user.points, user.display_name) == (42, "Ada")


def test_delete_removes_the_account_and_its_data():
    user = user_create(username="ada")
    keeper = user_create(username="grace")
    content_type = ContentType.objects.get_for_model(User)
    for owner in (user, keeper):
        LogEntry.objects.create(
            user=owner,
            content_type=content_type,
            object_id=str(owner.pk),
            object_repr="x",
            action_flag=ADDITION,
        )
    client, pair = client_for(user)
    response = client.delete("/api/me/", {"password": PASSWORD}, format="json")
    assert response.status_code == 204
    assert not User.objects.filter(pk=user.pk).exists()
    assert list(LogEntry.objects.values_list("object_repr", "user_id")) == [("x", keeper.pk)]
    assert client.get("/api/me/").status_code == 401
    refused = APIClient().post("/api/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json")
    assert refused.status_code == 401


@pytest.mark.parametrize("payload", [{"password": "wrong-password"}, {}])
def test_delete_needs_the_password(payload):
    user = user_create()
    client, _ = client_for(user)
    response = client.delete("/api/me/", payload, format="json")
    assert response.status_code == 400
    assert "password" in response.json()["fields"]
    assert User.objects.filter(pk=user.pk).exists()
