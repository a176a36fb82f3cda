"""A live sync killed with SIGKILL during the copy, and again while following, then run again:
the target ends byte for byte the source, and every user's points equal their ledger."""

from __future__ import annotations

import signal

import pytest
from django.db import connection

from migration_tools.tests.sync_support import (
    ChangeWriter,
    Database,
    DomainActivity,
    compare,
    mark,
    state,
    sync_process,
    synced,
    wait_for,
)
from migration_tools.verify import format_report

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

FILLER = 40000


def _kill(process) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def test_sigkill_during_the_copy_and_during_the_catch_up_loses_and_doubles_nothing(
    django_test_server, atlas_db, tmp_path, midweek_clock, django_db_left_as_found
):
    source = Database(django_test_server, connection.settings_dict["NAME"])
    source_db = connection.database  # the application's own database: the services write here
    domain = DomainActivity()
    for _ in range(12):
        domain.step()
    source_db["bulk_filler"].insert_many([{"_id": n, "payload": "p" * 300} for n in range(FILLER)])
    writer = ChangeWriter(source.uri, source.name, pause=0.02)
    writer.prepare()
    writer.start()
    log = tmp_path / "sync.log"
    processes = []
    try:
        processes.append(sync_process(source, atlas_db, log))
        # 1. Killed in the middle of the copy of the filler collection.
        while atlas_db.db["bulk_filler"].estimated_document_count() < 10000:
            assert processes[-1].poll() is None, log.read_text()
            domain.step()
        _kill(processes[-1])
        copied = atlas_db.db["bulk_filler"].count_documents({})
        assert 0 < copied < FILLER and not state(atlas_db.db)["copy"]["done"]

        # 2. Run again: it takes the lease over at once, finishes the copy, then is killed while following.
        processes.append(sync_process(source, atlas_db, log))

        def following():
            saved = state(atlas_db.db)
            return saved["copy"]["done"] and sum((saved["stream"].get("events") or {}).values()) > 200

        while not following():
            assert processes[-1].poll() is None, log.read_text()
            domain.step()
        _kill(processes[-1])

        # 3. Run again while the changes go on, then let everything settle and stop it.
        processes.append(sync_process(source, atlas_db, log, "--json", str(tmp_path / "figures.json")))
        for _ in range(12):
            domain.step()
        writer.stopping.set()
        writer.join()
        assert writer.error is None
        marker = mark(source_db)
        wait_for(
            lambda: synced(atlas_db.db, marker),
            timeout=120,
            alive=lambda: processes[-1].poll() is None,
            explain=lambda: (
                f"{state(atlas_db.db)['verify']}\n{format_report(compare(source_db, atlas_db.db))}"
            ),
        )
        processes[-1].send_signal(signal.SIGTERM)
        assert processes[-1].wait(timeout=60) == 0, log.read_text()
    finally:
        for process in processes:
            if process.poll() is None:
                _kill(process)
    output = log.read_text()
    assert output.count("Took over from process") == 2, output
    report = compare(source_db, atlas_db.db)
    assert report.identical, format_report(report)
    invariants = {item.name: item.status for item in report.invariants}
    assert set(invariants.values()) == {"ok"}, report.invariants
    assert source_db["accounts_user"].count_documents({}) >= 8
