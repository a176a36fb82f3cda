"""Maintenance mode: on freezes every change a user makes but lets sessions open and close; hard
freezes those too; the flag is switched by manage.py maintenance and shown in the admin."""

import io

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.tests.factories import PASSWORD, client_for, user_create
from operations.middleware import SESSION_VIEWS
from studymaster.db import application_database
from studymaster.maintenance import (
    MAINTENANCE_COLLECTION,
    forget_cached_state,
    maintenance_get,
    maintenance_set,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def maintenance():
    """Set the application's flag: ``maintenance("on")``. Cleared afterwards, cache included."""

    def switch(level: str):
        maintenance_set(application_database(), level=level, set_by="tests@ci")
        forget_cached_state()

    forget_cached_state()
    yield switch
    application_database()[MAINTENANCE_COLLECTION].delete_many({})
    forget_cached_state()


def _login(client, user):
    return client.post("/api/auth/token/", {"username": user.username, "password": PASSWORD}, format="json")


def _assert_frozen_json(response, level):
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == ("300" if level == "on" else "10")
    assert response.json()["code"] == "maintenance" and response.json()["message"]


def _admin(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_on_freezes_api_writes_with_a_json_503(maintenance, method):
    maintenance("on")
    client, _ = client_for(user_create())
    _assert_frozen_json(getattr(client, method)("/api/sessions/", {}, format="json"), "on")


def test_on_lets_login_token_refresh_and_logout_through_and_reads_keep_working(maintenance):
    user = user_create()
    maintenance("on")
    login = _login(APIClient(), user)
    assert login.status_code == 200, login.content
    refresh = APIClient().post(
        "/api/auth/token/refresh/", {"refresh": login.json()["refresh"]}, format="json"
    )
    assert refresh.status_code == 200, refresh.content
    client, pair = client_for(user)
    assert client.get("/api/me/").status_code == 200
    assert client.get("/api/sessions/").status_code == 200
    assert client.post("/api/auth/logout/", {"refresh": pair["refresh"]}, format="json").status_code == 205
    # Registration and password changes are changes: frozen.
    _assert_frozen_json(
        APIClient().post(
            "/api/auth/register/",
            {"username": "new", "email": "n@example.com", "password": PASSWORD},
            format="json",
        ),
        "on",
    )


def test_on_freezes_admin_writes_with_a_page_but_not_the_admin_login(maintenance):
    staff = user_create(is_staff=True, is_superuser=True)
    learner = user_create()
    maintenance("on")
    response = _admin(staff).post(reverse("admin:accounts_user_change", args=[learner.pk]), {"username": "x"})
    assert response.status_code == 503 and response["Retry-After"] == "300"
    assert response["Content-Type"].startswith("text/html") and b"Changes are paused" in response.content
    login = Client().post(reverse("admin:login"), {"username": staff.username, "password": PASSWORD})
    assert login.status_code == 302  # logged in


def test_hard_refuses_login_refresh_and_logout_too_but_not_reads(maintenance):
    user = user_create()
    client, pair = client_for(user)
    maintenance("hard")
    _assert_frozen_json(_login(APIClient(), user), "hard")
    _assert_frozen_json(
        APIClient().post("/api/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json"), "hard"
    )
    _assert_frozen_json(client.post("/api/auth/logout/", {"refresh": pair["refresh"]}, format="json"), "hard")
    assert client.get("/api/me/").status_code == 200
    response = Client().post(reverse("admin:login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 503 and response["Content-Type"].startswith("text/html")


def test_off_lets_every_write_through(maintenance):
    maintenance("off")
    client, _ = client_for(user_create())
    assert client.post("/api/sessions/", {}, format="json").status_code == 400  # validated, not frozen


def test_maintenance_mode_in_the_environment_forces_on_and_never_off(maintenance):
    user = user_create()
    client, _ = client_for(user)
    with override_settings(MAINTENANCE_MODE=True):
        _assert_frozen_json(client.post("/api/sessions/", {}, format="json"), "on")
        assert _login(APIClient(), user).status_code == 200
        maintenance("hard")
        _assert_frozen_json(_login(APIClient(), user), "hard")


def test_the_session_views_are_named_as_the_urls_name_them():
    from django.urls import resolve

    paths = [
        "/api/auth/token/",
        "/api/auth/token/refresh/",
        "/api/auth/logout/",
        "/admin/login/",
        "/admin/logout/",
    ]
    assert {resolve(path).view_name for path in paths} == SESSION_VIEWS


def test_the_admin_shows_a_banner_while_maintenance_is_on(maintenance):
    staff = user_create(is_staff=True, is_superuser=True)
    admin = _admin(staff)
    assert b"maintenance-banner" not in admin.get("/admin/").content
    maintenance("on")
    page = admin.get("/admin/").content.decode()
    assert 'id="maintenance-banner"' in page and "Maintenance is on (set by tests@ci at " in page
    maintenance("hard")
    assert "nothing can be changed, logging in included" in admin.get("/admin/").content.decode()


def _command(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("maintenance", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_switches_the_flag_and_status_says_who_and_when(maintenance):
    out, _ = _command("status")
    assert out.startswith("maintenance: off (never set), in database ")
    out, _ = _command("on", "--by", "alice@web-1")
    assert out.startswith("maintenance: on (set by alice@web-1 at ") and "within 2 s" in out
    stored = maintenance_get(application_database())
    assert (stored.level, stored.set_by) == ("on", "alice@web-1") and stored.set_at is not None
    out, _ = _command("status")
    assert f"maintenance: on (set by alice@web-1 at {stored.set_at:%Y-%m-%d %H:%M:%S} UTC)" in out
    assert "logging in, token refresh and logout go through" in out
    _command("hard")
    assert maintenance_get(application_database()).level == "hard"
    with override_settings(MAINTENANCE_MODE=True):
        out, err = _command("off")
        assert "MAINTENANCE_MODE=1 in this environment still forces maintenance on" in err
        out, _ = _command("status")
        assert out.startswith("maintenance: on (set by ") and "forces at least on" in out
    set_by = maintenance_get(application_database()).set_by
    assert "@" in set_by  # user@host of the shell by default


def test_the_command_refuses_an_unknown_level():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("maintenance", "sometimes")


@pytest.mark.parametrize(("value", "forced"), [("1", True), ("0", False)])
def test_maintenance_mode_is_read_from_the_environment(monkeypatch, value, forced):
    from studymaster.settings import base

    monkeypatch.setenv("MAINTENANCE_MODE", value)
    namespace = {name: value for name, value in vars(base).items() if name.isupper()}
    base.configure(
        namespace,
        debug=False,
        secret_key="x",
        mongodb_uri="mongodb://127.0.0.1/",
        allowed_hosts=[],
        dotenv=False,
    )
    assert namespace["MAINTENANCE_MODE"] is forced
