"""Database errors reaching a view answer in the one JSON error shape, with the right status."""

import pytest

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
