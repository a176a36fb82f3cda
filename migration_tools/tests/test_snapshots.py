"""Rollback snapshots: taken once, kept while they stand, taken again once the target holds more."""

import json

import pytest

from migration_tools.dump import STAGING_MARKER, load_dump
from migration_tools.restore import AUTO_SNAPSHOT, format_import_report, import_dump
from migration_tools.runs import AUDIT_COLLECTION
from migration_tools.snapshots import SnapshotRefused, stale_reason


def _import(dump_dir, target, **kwargs):
    return import_dump(
        target.client, load_dump(dump_dir), target_db=target.name, target_uri=target.uri, **kwargs
    )


def _snapshot_dir(out, target, stamp):
    return out.parent / f"{out.name}-rollback-{target.name}-{stamp}"


def _text(report):
    return format_import_report(report, seconds=0.1, verbosity=1, target="mongodb://***@host/")


def test_rollback_snapshot_of_a_non_empty_target(local_db, atlas_db, export):
    local_db.db["items"].insert_many([{"_id": n} for n in range(5)])
    out = export(local_db)
    atlas_db.db["previous"].insert_many([{"_id": n, "old": True} for n in range(3)])
    snapshot = out.parent / "rollback"
    report = _import(out, atlas_db, snapshot_dir=snapshot)
    assert report.snapshot.path == snapshot and not report.snapshot.reused
    manifest = json.loads((snapshot / "manifest.json").read_text())
    assert manifest["collections"]["previous"]["documents"] == 3
    assert "items" not in manifest["collections"]


def test_an_empty_target_gets_a_marker_not_a_snapshot(local_db, atlas_db, export):
    local_db.db["items"].insert_one({"_id": 1})
    out = export(local_db)
    atlas_db.db[AUDIT_COLLECTION].insert_one({"command": "import_atlas"})  # not data: still empty
    report = _import(out, atlas_db, snapshot_dir=out.parent / "rollback")
    assert report.snapshot.target_was_empty and report.snapshot.path == out.parent / "rollback"
    marker = json.loads((out.parent / "rollback" / "manifest.json").read_text())
    assert marker["target_was_empty"] is True and marker["collections"] == {}
    assert "dropping the collections it created" in _text(report)


def test_snapshots_and_markers_are_owner_only(local_db, atlas_db, export):
    local_db.db["items"].insert_one({"_id": 1})
    out = export(local_db)
    atlas_db.db["previous"].insert_one({"_id": 1})
    snapshot = out.parent / "rollback"
    _import(out, atlas_db, snapshot_dir=snapshot)
    for path in [snapshot, *snapshot.rglob("*")]:
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path


def test_a_rerun_after_importing_into_an_empty_target_keeps_it_marked_empty(local_db, atlas_db, export):
    local_db.db["items"].insert_many([{"_id": n} for n in range(5)])
    out = export(local_db)
    first = _import(out, atlas_db, snapshot_dir=AUTO_SNAPSHOT)
    assert first.snapshot.path.name.startswith(f"{out.name}-rollback-{atlas_db.name}-")
    atlas_db.db["items"].delete_many({"_id": {"$gte": 3}})  # as if the first run had died midway
    again = _import(out, atlas_db, snapshot_dir=AUTO_SNAPSHOT)
    assert again.snapshot.reused and again.snapshot.target_was_empty
    assert again.snapshot.path == first.snapshot.path
    # The half-imported target was not taken for the state to roll back to.
    assert len(list(out.parent.glob(f"{out.name}-rollback-*"))) == 1
    assert atlas_db.db["items"].count_documents({}) == 5
    assert "held no data before the first run of this import" in _text(again)


def test_a_rerun_keeps_the_first_runs_snapshot(local_db, atlas_db, export):
    local_db.db["items"].insert_many([{"_id": n} for n in range(5)])
    out = export(local_db)
    atlas_db.db["previous"].insert_one({"_id": 1})
    first = _import(out, atlas_db, snapshot_dir=_snapshot_dir(out, atlas_db, "20261129T230000Z"))
    assert not first.snapshot.reused
    atlas_db.db["items"].delete_many({"_id": {"$gte": 3}})
    again = _import(out, atlas_db, snapshot_dir=AUTO_SNAPSHOT)  # found beside the dump
    assert again.snapshot.reused and again.snapshot.path == first.snapshot.path
    assert len(list(out.parent.glob(f"{out.name}-rollback-*"))) == 1
    manifest = json.loads((first.snapshot.path / "manifest.json").read_text())
    assert set(manifest["collections"]) == {"previous"}
    assert f"Rollback snapshot kept from an earlier run of this import: {first.snapshot.path}" in _text(again)


@pytest.mark.parametrize(
    ("write", "reason"),
    [
        (lambda db: db["items"].insert_one({"_id": 99}), "items holds 6 documents, more than the 5"),
        (
            lambda db: (db["items"].delete_one({"_id": 0}), db["items"].insert_one({"_id": 99})),
            "items holds document 99, which the dump does not hold as it is",
        ),
        (
            lambda db: db["items"].update_one({"_id": 2}, {"$set": {"points": 7}}),
            "items holds document 2, which the dump does not hold as it is",
        ),
        (
            lambda db: db["sessions"].insert_one({"_id": 1}),
            "sessions holds documents, and the dump has no such",
        ),
    ],
    ids=["more documents", "an _id not in the dump", "a changed document", "a collection the dump lacks"],
)
def test_a_marker_stands_only_while_the_target_holds_nothing_the_dump_does_not(
    local_db, atlas_db, export, write, reason
):
    """Issue 11, item 1: an earlier "the target was empty" would make rolling back drop these writes."""
    local_db.db["items"].insert_many([{"_id": n} for n in range(5)])
    out = export(local_db)
    first = _import(out, atlas_db, snapshot_dir=_snapshot_dir(out, atlas_db, "20261129T230000Z"))
    assert first.snapshot.target_was_empty
    assert stale_reason(atlas_db.db, load_dump(out), None) is None
    write(atlas_db.db)
    assert reason in stale_reason(atlas_db.db, load_dump(out), None)
    again = _import(out, atlas_db, snapshot_dir=AUTO_SNAPSHOT)
    assert not again.snapshot.reused and not again.snapshot.target_was_empty
    assert again.snapshot.path != first.snapshot.path and (again.snapshot.path / "manifest.json").exists()
    assert again.snapshot.superseded.startswith(
        f"the earlier run's empty-target marker in {first.snapshot.path} no longer stands ("
    )
    assert reason in _text(again) and "dropping the collections" not in _text(again)


def test_a_snapshot_stands_while_the_target_holds_only_the_dumps_and_its_own_documents(
    local_db, atlas_db, export
):
    local_db.db["items"].insert_many([{"_id": n} for n in range(5)])
    out = export(local_db)
    atlas_db.db["items"].insert_one({"_id": 100, "before": True})  # the target's own, before the import
    first = _import(out, atlas_db, snapshot_dir=_snapshot_dir(out, atlas_db, "20261129T230000Z"))
    assert stale_reason(atlas_db.db, load_dump(out), load_dump(first.snapshot.path)) is None
    atlas_db.db["items"].insert_one({"_id": 101})  # a write after the import
    second = _import(out, atlas_db, snapshot_dir=AUTO_SNAPSHOT)
    assert second.snapshot.superseded and not second.snapshot.reused
    # The fresh snapshot holds the write; a third run keeps it.
    third = _import(out, atlas_db, snapshot_dir=AUTO_SNAPSHOT)
    assert third.snapshot.reused and third.snapshot.path == second.snapshot.path


def test_an_explicit_snapshot_dir_is_refused_while_an_earlier_snapshot_stands(local_db, atlas_db, export):
    """Issue 11, item 10: never silently ignored."""
    local_db.db["items"].insert_many([{"_id": n} for n in range(5)])
    out = export(local_db)
    atlas_db.db["previous"].insert_one({"_id": 1})
    first = _import(out, atlas_db, snapshot_dir=_snapshot_dir(out, atlas_db, "20261129T230000Z"))
    elsewhere = out.parent / "my-snapshots"
    with pytest.raises(SnapshotRefused) as refused:
        _import(out, atlas_db, snapshot_dir=elsewhere)
    assert str(first.snapshot.path) in str(refused.value) and "still stands" in str(refused.value)
    assert not elsewhere.exists()
    again = _import(out, atlas_db, snapshot_dir=first.snapshot.path)  # naming it is fine
    assert again.snapshot.reused


def test_a_snapshot_folder_holding_something_else_is_refused(local_db, atlas_db, export, tmp_path):
    local_db.db["items"].insert_one({"_id": 1})
    out = export(local_db)
    atlas_db.db["previous"].insert_one({"_id": 1})
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(SnapshotRefused, match="busy"):
        _import(out, atlas_db, snapshot_dir=tmp_path / "busy")
    assert "items" not in atlas_db.db.list_collection_names()


def test_snapshots_never_carry_the_tools_own_collections(local_db, atlas_db, export):
    """Issue 11, item 5: restoring a snapshot with --drop --yes never replaces the live audit log."""
    local_db.db["items"].insert_one({"_id": 1})
    out = export(local_db)
    atlas_db.db["previous"].insert_one({"_id": 1})
    atlas_db.db[AUDIT_COLLECTION].insert_one({"command": "earlier", "n": 1})
    atlas_db.db["migration_tools_maintenance"].insert_one({"_id": "maintenance", "level": "off"})
    report = _import(out, atlas_db, snapshot_dir=out.parent / "rollback")
    manifest = json.loads((report.snapshot.path / "manifest.json").read_text())
    assert set(manifest["collections"]) == {"previous"}
    assert manifest["excluded"] == ["migration_tools_maintenance", AUDIT_COLLECTION]
    atlas_db.db[AUDIT_COLLECTION].insert_one({"command": "later", "n": 2})
    _import(report.snapshot.path, atlas_db, drop=True)
    assert [doc["n"] for doc in atlas_db.db[AUDIT_COLLECTION].find()] == [1, 2]


def test_a_snapshot_that_did_not_finish_leaves_no_folder_and_the_rerun_takes_it(
    local_db, atlas_db, export, monkeypatch
):
    import migration_tools.dump as dump_module

    local_db.db["items"].insert_one({"_id": 1})
    out = export(local_db)
    atlas_db.db["previous"].insert_many([{"_id": n} for n in range(10)])
    snapshot = out.parent / "rollback"
    real_write = dump_module.HashingWriter.write

    def crash(self, data):
        raise KeyboardInterrupt  # Ctrl-C while the snapshot is written

    monkeypatch.setattr(dump_module.HashingWriter, "write", crash)
    with pytest.raises(KeyboardInterrupt):
        _import(out, atlas_db, snapshot_dir=snapshot)
    assert not snapshot.exists() and not snapshot.with_name("rollback.partial").exists()
    assert "items" not in atlas_db.db.list_collection_names()  # nothing written before the snapshot
    # A crash (SIGKILL) leaves the sibling: the rerun replaces it.
    snapshot.with_name("rollback.partial").mkdir()
    (snapshot.with_name("rollback.partial") / STAGING_MARKER).write_text("")
    monkeypatch.setattr(dump_module.HashingWriter, "write", real_write)
    report = _import(out, atlas_db, snapshot_dir=snapshot)
    assert report.snapshot.path == snapshot and (snapshot / "manifest.json").exists()
    assert not snapshot.with_name("rollback.partial").exists()
