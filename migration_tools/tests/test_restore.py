"""import: checked before the first write, idempotent, never overwriting, honest dry run."""

import bson
import pytest

from migration_tools.bsonfiles import DamagedDumpError
from migration_tools.dump import load_dump
from migration_tools.restore import format_import_report, import_dump
from migration_tools.tests.conftest import compare
from migration_tools.tests.factories import populate_awkward, rewrite_bson_file
from migration_tools.verify import format_report


def _import(dump_dir, target, **kwargs):
    kwargs.setdefault("snapshot_dir", None)
    return import_dump(
        target.client, load_dump(dump_dir), target_db=target.name, target_uri=target.uri, **kwargs
    )


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:-7])


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _break_metadata(path):
    path.write_text(path.read_text()[:-10])


@pytest.mark.parametrize(
    ("damage", "file_name", "words", "with_manifest"),
    [
        (_truncate, "validated.bson", "truncated", True),
        (_flip_byte, "validated.bson", "SHA-256", True),
        (_break_metadata, "indexed.metadata.json", "metadata", True),
        (_truncate, "validated.bson", "truncated", False),
        (_break_metadata, "indexed.metadata.json", "metadata", False),
    ],
    ids=["truncated", "bad checksum", "bad metadata json", "mongodump truncated", "mongodump bad metadata"],
)
def test_damaged_dump_is_refused_before_any_write(
    local_db, atlas_db, export, damage, file_name, words, with_manifest
):
    populate_awkward(local_db.db)
    out = export(local_db)
    if not with_manifest:
        (out / "manifest.json").unlink()
    damage(out / local_db.name / file_name)
    with pytest.raises(DamagedDumpError) as caught:
        _import(out, atlas_db)
    assert file_name in str(caught.value)
    assert words.lower() in str(caught.value).lower()
    assert atlas_db.db.list_collection_names() == []


def test_a_flipped_byte_inside_a_document_without_a_manifest_is_caught_by_decoding(
    local_db, atlas_db, export
):
    local_db.db["items"].insert_one({"_id": 1, "s": "abc"})
    out = export(local_db)
    (out / "manifest.json").unlink()
    path = out / local_db.name / "items.bson"
    data = bytearray(path.read_bytes())
    data[4] = 0x77  # an element type that does not exist
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedDumpError, match="items.bson"):
        _import(out, atlas_db)
    assert atlas_db.db.list_collection_names() == []


def test_rerun_after_a_partial_import_completes_without_duplicates(local_db, atlas_db, export):
    local_db.db["items"].insert_many([{"_id": n, "v": "x" * 100} for n in range(3000)])
    out = export(local_db)
    # An interrupted run: the collection exists and holds the first 1,234 documents.
    atlas_db.db.create_collection("items")
    atlas_db.db["items"].insert_many([{"_id": n, "v": "x" * 100} for n in range(1234)])
    report = _import(out, atlas_db, batch_bytes=64 * 1024)
    item = report.collections[0]
    assert (item.inserted, item.identical, item.conflicts) == (3000 - 1234, 1234, 0)
    assert atlas_db.db["items"].count_documents({}) == 3000
    assert compare(local_db, atlas_db).identical
    again = _import(out, atlas_db)
    assert (again.inserted, again.identical, again.conflicts) == (0, 3000, 0)


def test_conflicts_are_reported_and_never_overwritten(local_db, atlas_db, export):
    local_db.db["items"].insert_many([{"_id": n, "v": n} for n in range(10)])
    out = export(local_db)
    atlas_db.db["items"].insert_many(
        [{"_id": 3, "v": "mine"}, {"_id": 4, "v": bson.Int64(4)}, {"_id": 5, "v": 5}]
    )
    report = _import(out, atlas_db)
    item = report.collections[0]
    assert (item.inserted, item.identical, item.conflicts) == (7, 1, 2)
    assert item.conflict_ids == ["3", "4"]
    assert atlas_db.db["items"].find_one({"_id": 3})["v"] == "mine"
    assert isinstance(atlas_db.db["items"].find_one({"_id": 4})["v"], bson.Int64)


def test_dry_run_reports_exactly_and_writes_nothing(local_db, atlas_db, export):
    populate_awkward(local_db.db)
    out = export(local_db)
    atlas_db.db["validated"].insert_many([{"_id": 0, "name": "n0"}, {"_id": 1, "name": "other"}])
    before = {name: list(atlas_db.db[name].find()) for name in atlas_db.db.list_collection_names()}
    report = _import(out, atlas_db, dry_run=True, snapshot_dir=out.parent / "snap")
    after = {name: list(atlas_db.db[name].find()) for name in atlas_db.db.list_collection_names()}
    assert after == before
    assert not (out.parent / "snap").exists()
    by_name = {item.name: item for item in report.collections}
    assert (
        by_name["validated"].inserted,
        by_name["validated"].identical,
        by_name["validated"].conflicts,
    ) == (3, 1, 1)
    assert by_name["validated"].conflict_ids == ["1"]
    assert by_name["indexed"].created and by_name["indexed"].inserted == 20
    assert set(by_name["indexed"].indexes_created) == {
        "email_unique",
        "a_b_compound",
        "b_partial",
        "sp_sparse",
        "seen_ttl",
    }


def test_drop_replaces_the_dump_collections_only(local_db, atlas_db, export):
    local_db.db["items"].insert_many([{"_id": n} for n in range(5)])
    out = export(local_db)
    atlas_db.db["items"].insert_one({"_id": 1, "stale": True})
    atlas_db.db["unrelated"].insert_one({"_id": 1})
    report = _import(out, atlas_db, drop=True)
    item = report.collections[0]
    assert report.conflicts == 0 and item.replaced and (item.deleted, item.inserted) == (1, 5)
    assert atlas_db.db["unrelated"].count_documents({}) == 1
    assert compare(local_db, atlas_db).collections[0].identical


def _restore_case(local_db, atlas_db, export):
    """A target that holds the dump, then a bad second import: documents changed, added, an index."""
    local_db.db["items"].insert_many([{"_id": n, "v": n} for n in range(300)])
    local_db.db["items"].create_index("v", name="v_idx")
    out = export(local_db)
    _import(out, atlas_db)
    atlas_db.db["items"].update_many({"_id": {"$lt": 7}}, {"$set": {"v": "changed"}})
    atlas_db.db["items"].insert_many([{"_id": f"new{n}", "v": -n} for n in range(4)])
    atlas_db.db["items"].create_index("w", unique=True, sparse=True, name="w_unique")
    return out


def test_drop_writes_only_what_differs_and_leaves_the_rest_in_place(local_db, atlas_db, export):
    out = _restore_case(local_db, atlas_db, export)
    before = {doc["_id"] for doc in atlas_db.db["items"].find({"_id": {"$gte": 7, "$lt": 300}}, {"_id": 1})}
    report = _import(out, atlas_db, drop=True)
    item = report.collections[0]
    assert (item.deleted, item.inserted, item.identical, item.conflicts) == (11, 7, 293, 0)
    assert item.replaced and not item.dropped and item.indexes_dropped == ["w_unique"]
    assert {
        doc["_id"] for doc in atlas_db.db["items"].find({"_id": {"$gte": 7, "$lt": 300}}, {"_id": 1})
    } == before
    result = compare(local_db, atlas_db)
    assert result.identical, format_report(result)
    text = format_import_report(report, seconds=1, verbosity=1, target="t")
    assert "replaced in place: 11 deleted (not in the dump as they are); dropped indexes: w_unique" in text
    assert "7 documents inserted, 293 already identical, 11 deleted by --drop, 0 conflicts" in text


def test_drop_dry_run_counts_exactly_and_writes_nothing(local_db, atlas_db, export):
    out = _restore_case(local_db, atlas_db, export)
    before = sorted(atlas_db.db["items"].find(), key=repr)
    report = _import(out, atlas_db, drop=True, dry_run=True)
    item = report.collections[0]
    assert (item.deleted, item.inserted, item.identical, item.indexes_dropped) == (11, 7, 293, ["w_unique"])
    assert sorted(atlas_db.db["items"].find(), key=repr) == before
    assert "would be deleted" in format_import_report(report, seconds=1, verbosity=1, target="t")


def test_drop_of_a_collection_with_other_options_drops_it_and_creates_it_again(local_db, atlas_db, export):
    local_db.db.create_collection("validated", validator={"name": {"$type": "string"}})
    local_db.db["validated"].insert_one({"_id": 1, "name": "a"})
    out = export(local_db)
    atlas_db.db.create_collection("validated")
    atlas_db.db["validated"].insert_one({"_id": 1, "name": "a"})
    report = _import(out, atlas_db, drop=True)
    item = report.collections[0]
    assert item.dropped and item.created and not item.replaced and report.conflicts == 0
    assert compare(local_db, atlas_db).identical


def test_the_tools_own_collections_in_a_dump_are_never_imported(local_db, atlas_db, export):
    local_db.db["items"].insert_one({"_id": 1})
    out = export(local_db)
    # An old snapshot, or a mongodump of the whole database, may hold them.
    rewrite_bson_file(
        out / local_db.name / "migration_tools_migrationrun.bson", [{"_id": 1, "command": "old"}]
    )
    (out / "manifest.json").unlink()
    atlas_db.db["migration_tools_migrationrun"].insert_one({"_id": 1, "command": "live"})
    report = _import(out, atlas_db, drop=True)
    assert report.not_imported == ["migration_tools_migrationrun"]
    assert [c.name for c in report.collections] == ["items"]
    assert list(atlas_db.db["migration_tools_migrationrun"].find()) == [{"_id": 1, "command": "live"}]


def test_indexes_only_recreates_missing_and_different_indexes(local_db, atlas_db, export):
    populate_awkward(local_db.db)
    out = export(local_db)
    _import(out, atlas_db)
    atlas_db.db["indexed"].drop_index("sp_sparse")
    atlas_db.db["indexed"].drop_index("b_partial")
    atlas_db.db["indexed"].create_index("b", name="b_partial")
    atlas_db.db["validated"].delete_one({"_id": 0})
    report = _import(out, atlas_db, indexes_only=True)
    by_name = {item.name: item for item in report.collections}
    assert sorted(by_name["indexed"].indexes_created) == ["b_partial", "sp_sparse"]
    result = compare(local_db, atlas_db)
    assert next(c for c in result.collections if c.name == "indexed").identical, format_report(result)
    # Data untouched: the deleted document stays deleted.
    assert atlas_db.db["validated"].count_documents({}) == 4


def test_a_different_index_of_the_same_name_is_a_conflict_without_indexes_only(local_db, atlas_db, export):
    local_db.db["items"].insert_one({"_id": 1, "a": 1})
    local_db.db["items"].create_index("a", name="a_idx", unique=True)
    out = export(local_db)
    atlas_db.db["items"].create_index("a", name="a_idx")
    report = _import(out, atlas_db)
    assert report.collections[0].indexes_conflicting == ["a_idx"]
    assert report.conflicts == 1


def test_mongodump_folder_without_manifest_in_natural_order_imports(local_db, atlas_db, export):
    local_db.db["items"].insert_many([{"_id": n, "v": n} for n in range(20)])
    out = export(local_db)
    (out / "manifest.json").unlink()
    rewrite_bson_file(out / local_db.name / "items.bson", [{"_id": n, "v": n} for n in reversed(range(20))])
    report = _import(out / local_db.name, atlas_db)
    assert not report.checksums_checked
    assert report.inserted == 20
    assert compare(local_db, atlas_db).identical


def test_rerun_over_mixed_id_types_finds_every_document(local_db, atlas_db, export):
    populate_awkward(local_db.db)
    out = export(local_db)
    _import(out, atlas_db)
    again = _import(out, atlas_db)
    assert (again.inserted, again.conflicts) == (0, 0)
    assert {item.name: item.identical for item in again.collections}["mixed_ids"] == 17


def test_an_index_the_target_refuses_is_a_conflict_and_the_others_are_built(local_db, atlas_db, export):
    local_db.db["items"].insert_many([{"_id": n, "a": n, "b": n} for n in range(3)])
    local_db.db["items"].create_index("a", name="a_from_dump")
    local_db.db["items"].create_index("b", name="b_idx")
    out = export(local_db)
    atlas_db.db["items"].create_index("a", name="a_by_hand")  # same key, another name
    report = _import(out, atlas_db)
    item = report.collections[0]
    assert item.indexes_conflicting == ["a_from_dump"] and item.indexes_created == ["b_idx"]
    assert "b_idx" in {index["name"] for index in atlas_db.db["items"].list_indexes()}
    assert report.conflicts == 1


def test_other_collection_options_in_the_target_are_a_conflict(local_db, atlas_db, export):
    local_db.db.create_collection("validated", validator={"name": {"$type": "string"}})
    out = export(local_db)
    atlas_db.db.create_collection("validated")
    report = _import(out, atlas_db)
    assert report.collections[0].option_differences[0].startswith("validator:")
    assert report.conflicts == 1
    assert next(atlas_db.db.list_collections(filter={"name": "validated"}))["options"] == {}


def test_drop_in_place_over_more_documents_than_a_cursor_batch(local_db, atlas_db, export, monkeypatch):
    """Deletes land behind the open cursor while it reads the next batches: none is skipped."""
    from migration_tools import restore

    monkeypatch.setattr(restore, "BATCH_DOCUMENTS", 700)  # several delete batches per cursor batch
    local_db.db["items"].insert_many([{"_id": n, "v": n} for n in range(6000)])
    out = export(local_db)
    _import(out, atlas_db)
    atlas_db.db["items"].update_many({"_id": {"$mod": [7, 0]}}, {"$set": {"v": "changed"}})
    atlas_db.db["items"].insert_many([{"_id": 10_000 + n} for n in range(1500)])
    report = _import(out, atlas_db, drop=True)
    item = report.collections[0]
    assert (item.deleted, item.inserted, item.identical) == (858 + 1500, 858, 6000 - 858)
    result = compare(local_db, atlas_db)
    assert result.identical, format_report(result)
