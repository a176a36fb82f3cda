"""Fault injection for tests: failpoints on the embedded server, and a Django DB that can die.

Loaded as a pytest plugin by the root conftest. Fixtures (all ``embedded_only``: they need
``--enable-test-commands`` or a server the test may kill):

- ``failpoints``: arm ``failCommand`` on the server behind Django's test database, for the
  application's client only (``appName`` filter); turned off after the test.
- ``restartable_django_db``: Django's default connection moved to a durable SecantusDB the
  test may ``kill()`` and ``restart()`` on the same port; moved back after the test.
- ``unreachable_django_db``: Django's default connection pointed at a port nobody listens on.

A new fault test for an endpoint or a command takes one of these fixtures and the ``db``
fixture, arms a fault, calls its public surface, and checks that it succeeded or failed with
the classified answer, with nothing half written.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest
from pymongo import MongoClient

from studymaster.embedded import EmbeddedMongo, free_port
from studymaster.mongo import APP_NAME, client_options

FAILPOINT_ADMIN_APP = "studymaster-failpoints"


class FailPoints:
    """``configureFailPoint failCommand`` on one server, aimed at one application name."""

    def __init__(self, uri: str, *, app_name: str = APP_NAME):
        self.app_name = app_name
        self.client = MongoClient(uri, appName=FAILPOINT_ADMIN_APP, serverSelectionTimeoutMS=5000)

    def fail(
        self,
        *commands: str,
        times: int = 1,
        error_code: int | None = None,
        close_connection: bool = False,
        write_concern_error: dict | None = None,
        error_labels: list[str] | None = None,
        block_ms: int | None = None,
    ) -> None:
        """Make the next ``times`` of ``commands`` from the app fail as described."""
        data: dict = {"failCommands": list(commands), "appName": self.app_name}
        if error_code is not None:
            data["errorCode"] = error_code
        if close_connection:
            data["closeConnection"] = True
        if write_concern_error is not None:
            data["writeConcernError"] = write_concern_error
        if error_labels is not None:
            data["errorLabels"] = error_labels
        if block_ms is not None:
            data.update(blockConnection=True, blockTimeMS=block_ms)
        self.client.admin.command("configureFailPoint", "failCommand", mode={"times": times}, data=data)

    def off(self) -> None:
        self.client.admin.command("configureFailPoint", "failCommand", mode="off")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.off()
        self.client.close()


# A failpoint fakes a failover the server never goes through. The driver then marks the
# server Unknown and waits for its monitor to see it again; SecantusDB answers the streaming
# monitor's awaitable hello only after the full 10 s heartbeat (a real failover would answer
# at once), so test clients poll instead: the server is seen again within 0.5 s.
POLLING = {"serverMonitoringMode": "poll"}


@contextlib.contextmanager
def django_database_at(uri: str, name: str | None = None, **extra_options) -> Iterator[None]:
    """Point Django's default connection at ``uri`` (and the database ``name``, if given), then back."""
    from django.db import connection

    saved = {key: connection.settings_dict[key] for key in ("HOST", "OPTIONS", "NAME")}
    listeners = saved["OPTIONS"].get("event_listeners")
    connection.close_pool()
    connection.settings_dict["HOST"] = uri
    connection.settings_dict["OPTIONS"] = {**client_options(uri, event_listeners=listeners), **extra_options}
    connection.settings_dict["NAME"] = name or saved["NAME"]
    try:
        yield
    finally:
        connection.close_pool()
        connection.settings_dict.update(saved)


@pytest.fixture
def failpoints(django_test_server, db):
    """Failpoints on the server behind Django's test database, off again after the test."""
    if os.environ.get("MONGODB_TEST_URI"):  # never arm failpoints on a real cluster
        pytest.skip("failpoints need the embedded server")
    controller = FailPoints(django_test_server)
    controller.off()
    try:
        with django_database_at(django_test_server, **POLLING):
            yield controller
    finally:
        controller.close()


@pytest.fixture
def restartable_django_db(tmp_path, db):
    """A durable embedded server behind Django's default connection, for kill()/restart()."""
    server = EmbeddedMongo(tmp_path / "data", durable=True, test_commands=True)
    server.start()
    try:
        with django_database_at(server.uri(), **POLLING):
            yield server
    finally:
        server.close()


@pytest.fixture
def unreachable_django_db(db):
    """Django's default connection aimed at a local port where no server listens."""
    with django_database_at(f"mongodb://127.0.0.1:{free_port()}/"):
        yield
