"""Credentials never reach error pages, logs or command output."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from studymaster.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "KnownPassw0rdXyz"
URI = f"mongodb://studyapp:{PASSWORD}@127.0.0.1:27017/?authSource=admin"


@pytest.mark.urls("studymaster.tests.urls_boom")
def test_debug_error_page_never_shows_the_password(settings, monkeypatch):
    settings.DEBUG = True
    settings.ATLAS_MONGODB_URI = URI
    settings.LOCAL_MONGODB_URI = URI
    monkeypatch.setitem(settings.DATABASES["default"], "HOST", URI)
    client = Client(raise_request_exception=False)

    for accept in ("text/html", "text/plain"):
        response = client.get("/boom/", HTTP_ACCEPT=accept)
        body = response.content.decode()
        assert response.status_code == 500
        assert "could not reach" in body  # the report was rendered
        assert PASSWORD not in body
        assert "studyapp" not in body


def test_log_records_are_scrubbed(caplog):
    from studymaster.redaction import RedactingLogFilter

    logger = logging.getLogger("studymaster.test")
    logger.addFilter(RedactingLogFilter())
    try:
        with caplog.at_level(logging.INFO, logger="studymaster.test"):
            logger.info("connecting to %s", URI)
            try:
                raise ValueError(URI)
            except ValueError:
                logger.exception("failed")
    finally:
        logger.filters.clear()
    assert PASSWORD not in caplog.text
    assert "***@127.0.0.1" in caplog.text
    assert all(PASSWORD not in (record.exc_text or "") for record in caplog.records)


def test_failing_command_never_prints_the_password():
    uri = f"mongodb://studyapp:{PASSWORD}@127.0.0.1:{free_port()}/"
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="studymaster.settings.dev", MONGODB_URI=uri)
    env["MONGODB_SERVER_SELECTION_TIMEOUT_MS"] = "500"
    result = subprocess.run(
        [sys.executable, "manage.py", "healthcheck", "--verbosity", "3"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "unreachable" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr


def test_malformed_uri_in_a_command_is_refused_with_exit_2_and_no_password():
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="studymaster.settings.dev")
    result = subprocess.run(
        [sys.executable, "manage.py", "healthcheck", "--uri", f"mongodb+srv://u:{PASSWORD}@h.net:1/"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "may not carry a port" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr
