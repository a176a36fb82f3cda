"""Shared fixtures: the servers every database test runs against.

Without ``MONGODB_TEST_URI`` the suite starts embedded SecantusDB servers, once per
session. With it, the portable tests run unchanged against that server (a real
MongoDB or Atlas), in databases named ``test_…`` that are dropped afterwards, and the
tests marked ``embedded_only`` are skipped with their reason.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from pymongo import MongoClient

from studymaster.embedded import EmbeddedMongo, MongoUser, make_tls_files
from studymaster.mongo import client_options

# A developer's .env never changes what the suite tests: the test settings never read it, and
# every process a test starts (manage.py with the dev settings, the benches) inherits this.
os.environ["STUDYMASTER_ENV_FILE"] = ""
# Fault-injection fixtures: failpoints, a killable Django DB, an unreachable one.
pytest_plugins = ["tests.fault_injection"]

REAL_SERVER_URI = os.environ.get("MONGODB_TEST_URI", "")
TEST_DB_PREFIX = "test_"

ATLAS_ADMIN = MongoUser("atlas-admin", "admin-" + uuid.uuid4().hex, [{"role": "root", "db": "admin"}])
# Like an Atlas database user: readWrite on the named databases, nothing else.
ATLAS_APP_DATABASES = [f"{TEST_DB_PREFIX}atlas_{n}" for n in range(4)]
ATLAS_APP = MongoUser(
    "studymaster-app",
    "app-" + uuid.uuid4().hex,
    [{"role": "readWrite", "db": name} for name in ATLAS_APP_DATABASES],
)
# The migration user docs/atlas-setup.md prescribes: readWrite on the application's database and
# the runbook's two scratch databases, nothing else.
RUNBOOK_DATABASES = ["studymaster", "studymaster_rehearsal", "studymaster_restore"]
ATLAS_MIGRATION = MongoUser(
    "studymaster-migration",
    "migration-" + uuid.uuid4().hex,
    [{"role": "readWrite", "db": name} for name in RUNBOOK_DATABASES],
)


def pytest_collection_modifyitems(config, items):
    if not REAL_SERVER_URI:
        return
    for item in items:
        marker = item.get_closest_marker("embedded_only")
        if marker:
            reason = marker.args[0] if marker.args else "needs the embedded server's own powers"
            item.add_marker(pytest.mark.skip(reason=f"MONGODB_TEST_URI is set: {reason}"))


@dataclass
class MongoDatabase:
    """A database reserved for one test, on one server, with the URI to reach it."""

    uri: str
    name: str
    client: MongoClient

    @property
    def db(self):
        return self.client[self.name]


@pytest.fixture(scope="session")
def local_server(tmp_path_factory):
    """The plain "local" server: no auth, no TLS. None when MONGODB_TEST_URI is set."""
    if REAL_SERVER_URI:
        yield None
        return
    server = EmbeddedMongo(":memory:", test_commands=True)
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def atlas_server(tmp_path_factory):
    """The "Atlas-like" server: TLS and SCRAM; the app user has readWrite on named databases only."""
    if REAL_SERVER_URI:
        yield None
        return
    base = tmp_path_factory.mktemp("atlas")
    server = EmbeddedMongo(
        base / "data",
        users=[ATLAS_ADMIN, ATLAS_APP, ATLAS_MIGRATION],
        tls=make_tls_files(base / "tls"),
        test_commands=True,
    )
    server.start()
    yield server
    server.close()


def _reserve(uri: str, name: str, admin_uri: str | None = None):
    client = MongoClient(uri, **client_options(uri))
    admin = MongoClient(admin_uri, **client_options(admin_uri)) if admin_uri else client
    admin.drop_database(name)
    try:
        yield MongoDatabase(uri=uri, name=name, client=client)
    finally:
        admin.drop_database(name)
        client.close()
        if admin is not client:
            admin.close()


@pytest.fixture
def local_db(local_server):
    """An empty database on the local server, dropped after the test."""
    uri = REAL_SERVER_URI or local_server.uri()
    yield from _reserve(uri, f"{TEST_DB_PREFIX}local_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def other_local_db(local_server):
    """A second empty database on the local server (a restore target beside ``local_db``)."""
    uri = REAL_SERVER_URI or local_server.uri()
    yield from _reserve(uri, f"{TEST_DB_PREFIX}local_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def atlas_db(atlas_server):
    """An empty database on the Atlas-like server, reached as the readWrite-only app user."""
    if REAL_SERVER_URI:
        yield from _reserve(REAL_SERVER_URI, f"{TEST_DB_PREFIX}atlas_{uuid.uuid4().hex[:12]}")
        return
    yield from _reserve(
        atlas_server.uri(ATLAS_APP), ATLAS_APP_DATABASES[0], admin_uri=atlas_server.uri(ATLAS_ADMIN)
    )


@pytest.fixture(scope="session")
def django_test_server(tmp_path_factory):
    """The server behind Django's default database in tests."""
    if REAL_SERVER_URI:
        yield REAL_SERVER_URI
        return
    server = EmbeddedMongo(":memory:", test_commands=True)
    server.start()
    yield server.uri()
    server.close()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_test_server):
    from django.conf import settings

    database = settings.DATABASES["default"]
    database["HOST"] = django_test_server
    # Keep the monitoring listeners the settings attach (health detail, metrics).
    listeners = database["OPTIONS"].get("event_listeners")
    database["OPTIONS"] = client_options(django_test_server, event_listeners=listeners)
    database.setdefault("TEST", {})["NAME"] = (
        f"{TEST_DB_PREFIX}{settings.MONGODB_DB_NAME}_{uuid.uuid4().hex[:8]}"
    )


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium through Playwright; skipped (or failed with REQUIRE_BROWSER=1) without it."""
    if not os.path.exists(CHROMIUM):
        reason = "Chromium is not installed (apt-get install chromium)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(f"{reason}; set REQUIRE_BROWSER=1 to make this a failure")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls in the test are still sync.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# The real MongoDB Database Tools, beside the project (../shared/tools); the script unpacks them once.
MONGO_TOOLS_SCRIPT = Path(__file__).resolve().parent.parent / "shared" / "tools" / "mongo-tools.sh"
MONGO_TOOLS = ("mongodump", "mongorestore", "bsondump")


@dataclass(frozen=True)
class MongoTools:
    """mongodump, mongorestore and bsondump in ``folder``."""

    folder: Path
    config_dir: Path

    @contextlib.contextmanager
    def command(self, tool: str, *args: str, uri: str):
        """The command line of ``tool`` against ``uri``, whose URI goes in a --config file (mode 600)
        that lives as long as the context: never on the command line, where it could carry a password."""
        config = self.config_dir / f"{uuid.uuid4().hex}.yaml"
        config.write_text(f'uri: "{uri}"\n')
        config.chmod(0o600)
        try:
            yield [str(self.folder / tool), f"--config={config}", *args]
        finally:
            config.unlink()

    def run(self, tool: str, *args: str, uri: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run ``tool`` against ``uri``; fail the test, with its output, on a non-zero exit."""
        with self.command(tool, *args, uri=uri) as command:
            result = subprocess.run(command, capture_output=True, timeout=timeout)
        if result.returncode != 0:
            pytest.fail(
                f"{tool} {' '.join(args)} exited {result.returncode}:\n{result.stderr.decode()[-3000:]}"
            )
        return result


@pytest.fixture(scope="session")
def mongo_tools(tmp_path_factory):
    """The real tools (100.8.0); skipped with the reason without them, failed with REQUIRE_MONGO_TOOLS=1."""
    reason = None
    if not MONGO_TOOLS_SCRIPT.exists():
        reason = f"the MongoDB Database Tools are not at hand ({MONGO_TOOLS_SCRIPT} is missing)"
    else:
        found = subprocess.run(["bash", str(MONGO_TOOLS_SCRIPT)], capture_output=True, text=True, timeout=300)
        folder = Path(found.stdout.strip() or ".")
        missing = [tool for tool in MONGO_TOOLS if not os.access(folder / tool, os.X_OK)]
        if found.returncode != 0 or missing:
            reason = f"{MONGO_TOOLS_SCRIPT} did not provide {', '.join(missing) or 'the tools'}: {found.stderr[-500:]}"
    if reason:
        if os.environ.get("REQUIRE_MONGO_TOOLS") == "1":
            pytest.fail(f"REQUIRE_MONGO_TOOLS=1 but {reason}")
        pytest.skip(f"{reason}; set REQUIRE_MONGO_TOOLS=1 to make this a failure")
    return MongoTools(folder=folder, config_dir=tmp_path_factory.mktemp("mongo-tools"))


# A Wednesday afternoon in UTC: hours before it and after it stay in the same day and ISO week.
MIDWEEK = datetime.datetime(2026, 11, 25, 15, 0, tzinfo=datetime.UTC)


@pytest.fixture
def midweek_clock(monkeypatch):
    """Django's clock moved to MIDWEEK, running at real speed from there.

    Tests that log study sessions "hours ago" would otherwise cross midnight, or Monday's week
    boundary, when the suite runs in the small hours (UTC), and quests count only open periods.
    """
    from django.utils import timezone

    real_now = timezone.now
    offset = MIDWEEK - real_now()
    monkeypatch.setattr(timezone, "now", lambda: real_now() + offset)
