"""docs/migration.md, followed as written, with the rights docs/atlas-setup.md gives the migration user.

Issue 11, item 8: the rehearsal, the real import, the backup, its checks and both restores need
readWrite on studymaster, studymaster_rehearsal and studymaster_restore, and on nothing else.
"""

import pytest
from django.test import override_settings

from conftest import ATLAS_ADMIN, ATLAS_MIGRATION, RUNBOOK_DATABASES
from migration_tools.tests.conftest import run_command
from migration_tools.tests.factories import populate_domain

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.embedded_only("provisions the migration user on the embedded Atlas-like server"),
]


@pytest.fixture
def runbook(local_server, atlas_server):
    """The local "studymaster" with data, the Atlas-like server reached as the migration user."""
    local = local_server.client()
    admin = atlas_server.client(ATLAS_ADMIN)
    for name in RUNBOOK_DATABASES:
        admin.drop_database(name)
    local.drop_database("studymaster")
    populate_domain(local["studymaster"], users=5)
    try:
        with override_settings(
            LOCAL_MONGODB_URI=local_server.uri(),
            ATLAS_MONGODB_URI=atlas_server.uri(ATLAS_MIGRATION),
            MONGODB_DB_NAME="studymaster",
        ):
            yield atlas_server.uri(ATLAS_MIGRATION)
    finally:
        for name in RUNBOOK_DATABASES:
            admin.drop_database(name)
        local.drop_database("studymaster")
        local.close()
        admin.close()


def test_the_runbook_runs_as_written_with_the_rights_the_docs_give(runbook, tmp_path):
    work = tmp_path / "studymaster-migration"
    steps = [
        # 1. Before migrating: reachability, then a rehearsal into a scratch database.
        ("healthcheck", "--uri", runbook),
        ("export_local", "--out", f"{work}/rehearsal"),
        ("import_atlas", "--from", f"{work}/rehearsal", "--db", "studymaster_rehearsal"),
        ("verify_migration", "--target-db", "studymaster_rehearsal"),
        # 4. The cut-over's export, import (a dry run first) and verification.
        ("export_local", "--out", f"{work}/final"),
        ("import_atlas", "--from", f"{work}/final", "--dry-run"),
        ("import_atlas", "--from", f"{work}/final"),
        ("verify_migration", "--json", f"{work}/verify-final.json"),
        # 6. Back up, check the backup without restoring, restore into the scratch database, then
        # into the real one.
        ("export_local", "--uri", runbook, "--out", f"{work}/backups/2026-11-30", "--gzip"),
        ("verify_migration", "--dump", f"{work}/backups/2026-11-30"),
        ("import_atlas", "--from", f"{work}/backups/2026-11-30", "--db", "studymaster_restore", "--dry-run"),
        ("import_atlas", "--from", f"{work}/backups/2026-11-30", "--db", "studymaster_restore"),
        ("verify_migration", "--dump", f"{work}/backups/2026-11-30", "--target-db", "studymaster_restore"),
        ("import_atlas", "--from", f"{work}/backups/2026-11-30", "--drop", "--yes"),
    ]
    for step in steps:
        code, out, err = run_command(*step)
        assert code == 0, f"{' '.join(step)}\n{out}\n{err}"
        assert "warning" not in err, f"{' '.join(step)}\n{err}"
