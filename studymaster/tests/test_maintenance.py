"""The maintenance flag: stored through any PyMongo Database, cached per process, followed within
PROPAGATION_SECONDS by another process."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from studymaster.maintenance import (
    CACHE_SECONDS,
    MAINTENANCE_COLLECTION,
    PROPAGATION_SECONDS,
    MaintenanceCache,
    MaintenanceState,
    effective,
    maintenance_get,
    maintenance_set,
)
from studymaster.tools_collections import is_tools_collection

ROOT = Path(__file__).resolve().parents[2]


def test_the_flag_is_one_of_the_tools_own_collections():
    assert MAINTENANCE_COLLECTION == "migration_tools_maintenance" and is_tools_collection(
        MAINTENANCE_COLLECTION
    )


def test_set_and_get_through_another_applications_database(atlas_db):
    """What the live sync does: set the source application's flag through its own client."""
    assert maintenance_get(atlas_db.db) == MaintenanceState()
    stored = maintenance_set(atlas_db.db, level="hard", set_by="sync_atlas@host")
    again = maintenance_get(atlas_db.db)
    assert (again.level, again.set_by) == ("hard", "sync_atlas@host")
    assert again.set_at == stored.set_at.replace(microsecond=stored.set_at.microsecond // 1000 * 1000)
    assert atlas_db.db[MAINTENANCE_COLLECTION].count_documents({}) == 1
    assert set(atlas_db.db[MAINTENANCE_COLLECTION].find_one()) == {"_id", "level", "set_by", "set_at"}
    with pytest.raises(ValueError, match="not a maintenance level"):
        maintenance_set(atlas_db.db, level="soft", set_by="x")


def test_the_environment_forces_at_least_on_and_never_off():
    assert effective(MaintenanceState("off"), forced=True).level == "on"
    assert effective(MaintenanceState("hard"), forced=True).level == "hard"
    assert effective(MaintenanceState("on"), forced=False) == MaintenanceState("on")
    assert "forces at least on" in effective(MaintenanceState("off"), forced=True).describe()


def test_a_process_reads_the_flag_at_most_once_per_cache_period_and_keeps_it_when_a_read_fails():
    now, reads, answers = [100.0], [], ["on", RuntimeError("down"), "hard"]

    def read():
        answer = answers[len(reads)]
        reads.append(now[0])
        if isinstance(answer, Exception):
            raise answer
        return MaintenanceState(answer)

    cache = MaintenanceCache(read, clock=lambda: now[0])
    assert cache.get().level == "on"
    now[0] += CACHE_SECONDS * 0.9
    assert cache.get().level == "on" and len(reads) == 1  # no operation for this request
    now[0] += CACHE_SECONDS * 0.2
    assert cache.get().level == "on" and len(reads) == 2  # read failed: the last level known stays
    now[0] += CACHE_SECONDS * 0.5
    assert len(reads) == 2 and cache.get().level == "on"  # and is not retried at once
    now[0] += CACHE_SECONDS
    assert cache.get().level == "hard" and len(reads) == 3


FOLLOWER = textwrap.dedent(
    """
    import sys, time
    from pymongo import MongoClient
    from studymaster.maintenance import MaintenanceCache, maintenance_get
    client = MongoClient(sys.argv[1])
    cache = MaintenanceCache(lambda: maintenance_get(client[sys.argv[2]]))
    level = cache.get().level
    print("ready", level, flush=True)
    while True:
        state = cache.get()
        if state.level != level:
            level = state.level
            print("seen", level, time.time(), flush=True)
            if level == "off":
                break
        time.sleep(0.005)
    """
)


@pytest.mark.slow
def test_another_process_follows_the_flag_within_the_propagation_bound(local_db):
    """Two processes, two clients: the figure the live sync waits on, measured."""
    maintenance_set(local_db.db, level="off", set_by="test")
    follower = subprocess.Popen(
        [sys.executable, "-c", FOLLOWER, local_db.uri, local_db.name],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "studymaster.settings.test"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout.readline().split() == ["ready", "off"]
        delays = []
        # Pauses that land the changes at different points of the follower's cache period.
        for level, pause in (("on", 0.05), ("hard", 0.3), ("on", 0.55), ("hard", 0.8), ("off", 0.95)):
            time.sleep(pause)
            maintenance_set(local_db.db, level=level, set_by="test")
            set_at = time.time()
            seen, seen_level, seen_at = follower.stdout.readline().split()
            assert (seen, seen_level) == ("seen", level)
            delays.append(float(seen_at) - set_at)
        follower.wait(timeout=10)
    finally:
        follower.kill()
    print(f"maintenance flag followed by another process after {', '.join(f'{d:.2f}' for d in delays)} s")
    assert max(delays) <= PROPAGATION_SECONDS, delays
