"""MAINTENANCE_MODE=1: API writes answer a JSON 503 with Retry-After; reads keep working."""

import pytest
from django.test import override_settings


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_api_writes_get_503_with_retry_after(client, method):
    with override_settings(MAINTENANCE_MODE=True):
        response = getattr(client, method)("/api/sessions/", data={}, content_type="application/json")
    assert response.status_code == 503
    assert response["Retry-After"].isdigit()
    body = response.json()
    assert body["code"] == "maintenance" and body["message"]


def test_reads_and_non_api_paths_are_not_frozen(client):
    with override_settings(MAINTENANCE_MODE=True):
        assert client.get("/api/sessions/").status_code != 503
        assert client.post("/admin/login/", data={}).status_code != 503


def test_writes_pass_through_when_maintenance_is_off(client):
    with override_settings(MAINTENANCE_MODE=False):
        assert client.post("/api/sessions/", data={}, content_type="application/json").status_code != 503


def test_maintenance_mode_is_read_from_the_environment(monkeypatch):
    from studymaster.settings import base

    configure = base.configure
    monkeypatch.setenv("MAINTENANCE_MODE", "1")
    namespace = {name: value for name, value in vars(base).items() if name.isupper()}
    configure(namespace, debug=False, secret_key="x", mongodb_uri="mongodb://127.0.0.1/", allowed_hosts=[])
    assert namespace["MAINTENANCE_MODE"] is True
    monkeypatch.setenv("MAINTENANCE_MODE", "0")
    configure(namespace, debug=False, secret_key="x", mongodb_uri="mongodb://127.0.0.1/", allowed_hosts=[])
    assert namespace["MAINTENANCE_MODE"] is False
