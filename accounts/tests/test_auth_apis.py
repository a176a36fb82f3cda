"""Registration, tokens, rotation, logout and password change through the HTTP API."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import RevokedToken, RevokedTokenFamily, User
from accounts.tests.factories import PASSWORD, client_for, user_create

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-different-long-passphrase"


def _error_shape(response, code=None):
    body = response.json()
    assert set(body) <= {"code", "message", "fields"} and body["message"]
    if code:
        assert body["code"] == code
    return body


def _login(client, username, password=PASSWORD):
    return client.post("/api/auth/token/", {"username": username, "password": password}, format="json")


# Registration


def test_register_creates_an_account_and_returns_its_public_fields():
    response = APIClient().post(
        "/api/auth/register/",
        {"username": "ada", "email": "Ada@Example.COM", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    user = User.objects.get(username="ada")
    assert body == {"id": str(user.pk), "username": "ada", "email": "ada@example.com"}
    assert user.check_password(PASSWORD) and user.email == "ada@example.com"
    assert user.time_zone == "UTC"


def test_register_may_set_the_time_zone_which_is_not_a_change():
    response = APIClient().post(
        "/api/auth/register/",
        {"username": "ada", "email": "ada@example.com", "password": PASSWORD, "time_zone": "Asia/Tokyo"},
        format="json",
    )
    assert response.status_code == 201
    user = User.objects.get(username="ada")
    assert (user.time_zone, user.time_zone_changed_at) == ("Asia/Tokyo", None)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (
            {"username": "ada", "email": "ada@example.com", "password": PASSWORD, "time_zone": "Mars/Base"},
            "time_zone",
        ),
        ({"username": "ada", "email": "ada@example.com", "password": "123"}, "password"),
        ({"username": "ada", "email": "ada@example.com", "password": "password123"}, "password"),
        ({"username": "ada", "email": "ada@example.com", "password": "ada@example.com1"}, "password"),
        ({"username": "ada lovelace", "email": "ada@example.com", "password": PASSWORD}, "username"),
        ({"username": "ada", "email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "ada@example.com", "password": PASSWORD}, "username"),
        ({"username": "ada", "email": "ada@example.com", "password": "x" * 300}, "password"),
    ],
)
def test_register_rejects_bad_input_naming_the_field(payload, field):
    response = APIClient().post("/api/auth/register/", payload, format="json")
    assert response.status_code == 400
    assert field in _error_shape(response, "invalid")["fields"]
    assert not User.objects.filter(username="ada").exists()


def test_register_refuses_a_taken_username_and_an_email_in_any_case():
    user_create(username="ada", email="ada@example.com")
    response = APIClient().post(
        "/api/auth/register/",
        {"username": "ada", "email": "ADA@example.com", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == 400
    assert set(_error_shape(response, "invalid")["fields"]) == {"username", "email"}
    response = APIClient().post(
        "/api/auth/register/",
        {"username": "grace", "email": "Ada@Example.com", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"email"}
    # Every problem at once: a client fixes them in one round.
    response = APIClient().post(
        "/api/auth/register/",
        {"username": "ada", "email": "ada@example.com", "password": "password"},
        format="json",
    )
    assert set(response.json()["fields"]) == {"username", "email", "password"}
    assert User.objects.count() == 1


def test_the_email_index_refuses_duplicates_that_skip_the_check():
    from django.db import IntegrityError

    user_create(username="ada", email="ada@example.com")
    with pytest.raises(IntegrityError):
        User.objects.create_user("grace", "ada@example.com", PASSWORD)
    # Accounts without an email (createsuperuser) are exempt from the unique index.
    User.objects.create_user("admin1", "", PASSWORD)
    User.objects.create_user("admin2", "", PASSWORD)


# Tokens


def test_login_returns_a_token_pair_that_authenticates():
    user_create(username="ada")
    response = _login(APIClient(), "ada")
    assert response.status_code == 200
    pair = response.json()
    assert set(pair) == {"access", "refresh"}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    assert client.get("/api/me/").json()["username"] == "ada"


@pytest.mark.parametrize(("username", "password"), [("ada", "wrong-password"), ("nobody", PASSWORD)])
def test_login_with_wrong_credentials_is_a_401_in_the_error_shape(username, password):
    user_create(username="ada")
    response = _login(APIClient(), username, password)
    assert response.status_code == 401
    _error_shape(response, "invalid_credentials")


def test_an_inactive_account_cannot_log_in():
    user_create(username="ada", is_active=False)
    assert _login(APIClient(), "ada").status_code == 401


def test_login_ignores_a_stale_authorization_header():
    user_create(username="ada")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert _login(client, "ada").status_code == 200


def _refresh(refresh):
    return APIClient().post("/api/auth/token/refresh/", {"refresh": refresh}, format="json")


def test_refresh_rotates_the_pair_within_its_family():
    user = user_create()
    _, pair = client_for(user)
    first = _refresh(pair["refresh"])
    assert first.status_code == 200
    rotated = first.json()
    assert set(rotated) == {"access", "refresh"} and rotated["refresh"] != pair["refresh"]
    second = _refresh(rotated["refresh"])
    assert second.status_code == 200
    family = {
        RefreshToken(token)["family"]
        for token in (pair["refresh"], rotated["refresh"], second.json()["refresh"])
    }
    assert len(family) == 1 and len(family.pop()) == 32
    assert RevokedToken.objects.count() == 2 and not RevokedTokenFamily.objects.exists()


def test_reusing_a_rotated_out_refresh_token_revokes_its_whole_family():
    user = user_create()
    _, pair = client_for(user)
    _, other_login = client_for(user)
    rotated = _refresh(pair["refresh"]).json()
    successor = _refresh(rotated["refresh"]).json()

    reuse = _refresh(pair["refresh"])  # someone holds a copy of the first token
    assert reuse.status_code == 401
    _error_shape(reuse, "token_revoked")
    # Every token descended from that login stops working, the newest too ...
    refused = _refresh(successor["refresh"])
    assert refused.status_code == 401
    _error_shape(refused, "token_revoked")
    assert RevokedTokenFamily.objects.filter(family=RefreshToken(pair["refresh"])["family"]).count() == 1
    # ... and no other login of the account is touched.
    assert _refresh(other_login["refresh"]).status_code == 200


def test_a_token_from_before_families_is_a_family_of_its_own():
    user = user_create()
    legacy = RefreshToken.for_user(user)  # no family claim, as issued before this release
    rotated = _refresh(str(legacy)).json()
    assert RefreshToken(rotated["refresh"])["family"] == legacy["jti"]
    assert _refresh(str(legacy)).status_code == 401
    assert _refresh(rotated["refresh"]).status_code == 401


def test_a_revoked_family_expires_when_its_last_token_could():
    user = user_create()
    _, pair = client_for(user)
    _refresh(pair["refresh"])
    before = timezone.now()
    _refresh(pair["refresh"])
    revoked = RevokedTokenFamily.objects.get()
    lifetime = api_settings.REFRESH_TOKEN_LIFETIME
    assert before + lifetime <= revoked.expires_at <= timezone.now() + lifetime


@pytest.mark.parametrize("token", ["garbage", ""])
def test_refresh_with_a_bad_token_is_refused(token):
    response = APIClient().post("/api/auth/token/refresh/", {"refresh": token}, format="json")
    assert response.status_code in (400, 401)
    _error_shape(response)


def test_an_access_token_is_not_a_refresh_token():
    user = user_create()
    _, pair = client_for(user)
    response = APIClient().post("/api/auth/token/refresh/", {"refresh": pair["access"]}, format="json")
    assert response.status_code == 401
    _error_shape(response, "token_not_valid")


def test_refresh_for_a_deactivated_account_is_refused():
    user = user_create()
    _, pair = client_for(user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    response = APIClient().post("/api/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json")
    assert response.status_code == 401


def test_revoked_tokens_expire_with_the_token():
    user = user_create()
    _, pair = client_for(user)
    APIClient().post("/api/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json")
    token = RefreshToken(pair["refresh"])
    revoked = RevokedToken.objects.get(jti=token["jti"])
    assert int(revoked.expires_at.timestamp()) == token["exp"]


# Logout


def test_logout_revokes_the_refresh_token_and_its_family():
    user = user_create()
    client, pair = client_for(user)
    rotated = _refresh(pair["refresh"]).json()
    response = client.post("/api/auth/logout/", {"refresh": rotated["refresh"]}, format="json")
    assert response.status_code == 205
    refused = _refresh(rotated["refresh"])
    assert refused.status_code == 401
    _error_shape(refused, "token_revoked")
    # Logging out twice is harmless.
    assert client.post("/api/auth/logout/", {"refresh": rotated["refresh"]}, format="json").status_code == 205
    assert RevokedTokenFamily.objects.count() == 1


def test_logout_refuses_another_accounts_token_and_garbage():
    client, _ = client_for(user_create())
    _, other_pair = client_for(user_create())
    response = client.post("/api/auth/logout/", {"refresh": other_pair["refresh"]}, format="json")
    assert response.status_code == 400
    assert "refresh" in _error_shape(response, "invalid")["fields"]
    assert not RevokedToken.objects.exists() and not RevokedTokenFamily.objects.exists()
    response = client.post("/api/auth/logout/", {"refresh": "garbage"}, format="json")
    assert response.status_code == 400 and "refresh" in response.json()["fields"]


def test_logout_needs_authentication():
    _, pair = client_for(user_create())
    response = APIClient().post("/api/auth/logout/", {"refresh": pair["refresh"]}, format="json")
    assert response.status_code == 401
    _error_shape(response, "not_authenticated")


# Password change


def test_password_change_ends_every_earlier_token():
    user = user_create()
    client, pair = client_for(user)
    _, second_pair = client_for(user)
    response = client.post(
        "/api/auth/password/", {"old_password": PASSWORD, "new_password": NEW_PASSWORD}, format="json"
    )
    assert response.status_code == 200
    new_pair = response.json()

    for refresh in (pair["refresh"], second_pair["refresh"]):
        refused = APIClient().post("/api/auth/token/refresh/", {"refresh": refresh}, format="json")
        assert refused.status_code == 401
    assert client.get("/api/me/").status_code == 401  # the old access token too

    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {new_pair['access']}")
    assert fresh.get("/api/me/").status_code == 200
    assert (
        APIClient()
        .post("/api/auth/token/refresh/", {"refresh": new_pair["refresh"]}, format="json")
        .status_code
        == 200
    )
    assert _login(APIClient(), user.username, NEW_PASSWORD).status_code == 200
    assert _login(APIClient(), user.username, PASSWORD).status_code == 401


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"old_password": "wrong-password", "new_password": NEW_PASSWORD}, "old_password"),
        ({"old_password": PASSWORD, "new_password": "short"}, "new_password"),
        ({"old_password": PASSWORD, "new_password": "12345678901"}, "new_password"),
        ({"old_password": PASSWORD}, "new_password"),
    ],
)
def test_password_change_rejects_bad_input_naming_the_field(payload, field):
    user = user_create()
    client, pair = client_for(user)
    response = client.post("/api/auth/password/", payload, format="json")
    assert response.status_code == 400
    assert field in _error_shape(response, "invalid")["fields"]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert (
        APIClient().post("/api/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json").status_code
        == 200
    )
