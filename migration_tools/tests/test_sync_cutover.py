"""sync_atlas --cutover: the freeze of seconds, GO with the API under load, NO-GO with a writer that
bypasses the app, and the refusals around it."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from migration_tools.sync import LiveSync, SyncRefused
from migration_tools.tests.sync_support import (
    ChangeWriter,
    Database,
    DomainActivity,
    SyncThread,
    between,
    compare,
    options,
    state,
    sync_command,
)
from migration_tools.verify import format_report
from studymaster.maintenance import forget_cached_state, maintenance_get, maintenance_set

pytestmark = pytest.mark.django_db  # the application's database (MONGODB_URI) is the source


run = sync_command


def _quiet(line):
    return None


class Load:
    """Study sessions logged and deleted through the API, as fast as it answers; what it acknowledged."""

    def __init__(self, clients: list[APIClient]) -> None:
        self.clients, self.n = clients, 0
        self.logged: set[str] = set()  # ids acknowledged with 201, not deleted since
        self.deleted: set[str] = set()  # ids acknowledged with 204
        self.refused = 0  # 503 answers
        self.maintenance_bodies: set[str] = set()

    def step(self) -> None:
        self.n += 1
        api = self.clients[self.n % len(self.clients)]
        if self.n % 4 == 0 and self.logged:
            session_id = sorted(self.logged)[0]
            response = api.delete(f"/api/sessions/{session_id}/")
            if response.status_code == 204:
                self.logged.discard(session_id)
                self.deleted.add(session_id)
        else:
            started = timezone.now() - datetime.timedelta(minutes=600 + 25 * self.n)
            response = api.post(
                "/api/sessions/",
                {"subject": "Algebra", "duration_minutes": 20, "started_at": started.isoformat()},
                format="json",
            )
            if response.status_code == 201:
                self.logged.add(response.json()["id"])
        if response.status_code == 503:
            self.refused += 1
            self.maintenance_bodies.add(response.json()["code"])
        else:
            assert response.status_code in (201, 204), response.content


@pytest.fixture
def thawed_application():
    """The application's (Django test) database shared by the tests: its flag back off after the test."""
    yield
    maintenance_set(connection.database, level="off", set_by="test")
    forget_cached_state()


def test_cutover_with_the_api_under_load_freezes_writes_loses_none_and_goes(
    thawed_application, django_test_server, atlas_db, midweek_clock, django_db_left_as_found
):
    source = Database(django_test_server, connection.settings_dict["NAME"])
    source_db = connection.database
    domain = DomainActivity()
    for _ in range(6):
        domain.step()
    LiveSync(options(source, atlas_db, stop_when="verified"), say=_quiet).run()  # copied, following
    load = Load(domain.clients)
    for _ in range(10):
        load.step()

    cut = SyncThread(options(source, atlas_db, cutover=True, catch_up_timeout=60))
    cut.start()
    while cut.is_alive():
        load.step()
    cut.finish()
    forget_cached_state()

    figures = cut.figures
    assert figures.stopped_by == "GO" and figures.cutover["result"] == "GO"
    assert 2.0 <= figures.cutover["freeze_seconds"] < 30
    assert load.refused > 0 and load.maintenance_bodies == {"maintenance"}  # writes got the 503
    go = next(line for line in cut.lines if line.startswith("GO: "))
    assert f"freeze {figures.cutover['freeze_seconds']:.1f}s" in go
    assert "1. Set MONGODB_URI to the target" in go and "python manage.py maintenance off" in go
    assert maintenance_get(source_db).level == "hard"  # the source stays frozen
    assert maintenance_get(atlas_db.db).level == "on"
    # No acknowledged write lost: every session logged is on the target, none deleted is.
    sessions = atlas_db.db["sessions_app_studysession"]
    on_target = {str(doc["_id"]) for doc in sessions.find({}, {"_id": 1})}
    assert load.logged <= on_target and not (load.deleted & on_target)
    report = compare(source_db, atlas_db.db)
    assert report.identical, format_report(report)
    assert {item.status for item in report.invariants} == {"ok"}, report.invariants
    assert state(atlas_db.db)["cutover"]["result"] == "GO"

    # A sync after GO would overwrite the application's writes on the target: refused.
    with pytest.raises(SyncRefused, match="was cut over .GO at"):
        LiveSync(options(source, atlas_db), say=_quiet).run()


def test_cutover_while_a_raw_writer_goes_on_is_no_go_and_the_flag_goes_back_off(local_db, atlas_db):
    writer = ChangeWriter(local_db.uri, local_db.name, pause=0.05)
    writer.prepare()
    LiveSync(options(local_db, atlas_db, stop_when="verified"), say=_quiet).run()
    writer.start()
    try:
        code, out, err = run(*between(local_db, atlas_db, "--cutover", "--max-ops-per-second", "0"))
    finally:
        writer.stopping.set()
        writer.join()
    assert writer.error is None
    assert code == 1, err
    assert err.startswith("NO-GO: a writer bypasses the app: "), err
    assert "after the source's maintenance flag (hard) took effect" in err
    assert "the source's maintenance flag is back off, as before the freeze" in err
    assert "Froze the source: its maintenance flag is hard" in out
    assert maintenance_get(local_db.db).level == "off"
    assert maintenance_get(atlas_db.db).level == "off"  # nothing switched
    assert "cutover" not in state(atlas_db.db)


def test_cutover_needs_a_finished_copy_and_does_not_go_with_restart(local_db, atlas_db):
    local_db.db.items.insert_many([{"_id": n} for n in range(3)])
    code, _, err = run(*between(local_db, atlas_db, "--cutover"))
    assert code == 1 and err.startswith("refused: nothing to cut over: the target database")
    code, _, err = run(*between(local_db, atlas_db, "--cutover", "--restart", "--yes"))
    assert code == 1 and "does not go with --restart" in err
    assert maintenance_get(local_db.db).level == "off"
