"""Database and domain errors, bodies the parser cannot take and throttled requests answer in the
one JSON error shape, with the right status and headers."""

import json

import pytest
from rest_framework import exceptions
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts.tests.factories import user_create
from studymaster.api import exception_handler
from studymaster.errors import DomainError

pytestmark = pytest.mark.urls("studymaster.tests.urls_database_errors")

EXPECTED = {
    "transient": (503, "database_unavailable"),
    "pool": (503, "database_unavailable"),
    "quota": (507, "storage_quota"),
    "auth": (500, "database_error"),
}


@pytest.mark.parametrize("prefix", ["plain", "api"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_database_errors_map_to_json_statuses(client, prefix, name):
    response = client.get(f"/{prefix}/{name}/")
    status, code = EXPECTED[name]
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert set(body) == {"code", "message"}
    assert ("Retry-After" in response) == (status == 503)


@pytest.mark.parametrize("prefix", ["plain", "api"])
def test_the_error_text_goes_to_the_log_not_the_client(client, caplog, prefix):
    response = client.get(f"/{prefix}/auth/")
    assert "bad auth" not in response.content.decode()
    assert "authentication" in caplog.text
    assert "Authentication failed" in caplog.text


class _Conflict(DomainError):
    status = 409
    code = "conflict"


def test_every_domain_error_answers_in_the_one_shape():
    refused = exception_handler(DomainError("The subject is too long.", field="subject"), {})
    assert (refused.status_code, refused.data) == (
        400,
        {
            "code": "invalid",
            "message": "The subject is too long.",
            "fields": {"subject": ["The subject is too long."]},
        },
    )
    conflict = exception_handler(_Conflict("Already done."), {})
    assert (conflict.status_code, conflict.data) == (409, {"code": "conflict", "message": "Already done."})


def test_a_gamification_error_is_a_400_naming_its_field():
    from gamification.services import GamificationError, points_adjustment_check

    with pytest.raises(GamificationError) as refused:
        points_adjustment_check(amount=0, note="x")
    response = exception_handler(refused.value, {})
    assert response.status_code == 400
    assert response.data["code"] == "invalid" and list(response.data["fields"]) == ["amount"]


# Bodies the parser cannot take: the one error shape, never a 500 or Django's HTML page.

DEEP_JSON = "[" * 50000


@pytest.mark.urls("studymaster.urls")
@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/auth/token/", "/api/auth/register/", "/api/sessions/"])
def test_json_nested_too_deep_is_a_400_parse_error(path):
    user = user_create()
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    response = client.post(path, DEEP_JSON, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "code": "parse_error",
        "message": "JSON parse error - the body is nested too deeply.",
    }


@pytest.mark.urls("studymaster.urls")
@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), [("post", "/api/auth/token/"), ("patch", "/api/me/")])
def test_a_body_over_the_size_limit_is_a_json_413(settings, method, path):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    user = user_create()
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    body = json.dumps({"username": "a" * 2000, "display_name": "b" * 2000})
    response = getattr(client, method)(path, body, content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "code": "request_too_large",
        "message": "The request body is larger than the 1,000 bytes this API accepts.",
    }


def test_every_429_names_a_wait():
    response = exception_handler(exceptions.Throttled(), {})
    assert response.status_code == 429 and response["Retry-After"] == "60"
    response = exception_handler(exceptions.Throttled(wait=7), {})
    assert response["Retry-After"] == "7"
