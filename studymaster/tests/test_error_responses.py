"""Database and domain errors reaching a view answer in the one JSON error shape, with the right status."""

import pytest

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
