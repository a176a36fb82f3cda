"""The app's start-up wiring: the post_migrate hook that keeps the catalog seeded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_migrating_an_empty_database_part_way_then_fully_works(local_db):
    """``migrate accounts 0005`` on an empty database sends post_migrate before gamification's
    collections exist: the hook must not create them (as a side effect of inserting the
    catalog), or gamification.0001 then fails to create them."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studymaster.settings.dev",
        "MONGODB_URI": local_db.uri,
        "MONGODB_DB_NAME": local_db.name,
    }

    def migrate(*target):
        return subprocess.run(
            [sys.executable, "manage.py", "migrate", *target, "--no-input", "-v", "0"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    part_way = migrate("accounts", "0005")
    assert part_way.returncode == 0, part_way.stderr
    assert "gamification_badge" not in local_db.db.list_collection_names()
    fully = migrate()
    assert fully.returncode == 0, fully.stderr
    assert local_db.db["gamification_badge"].count_documents({}) == 8
    assert local_db.db["gamification_quest"].count_documents({}) == 4
