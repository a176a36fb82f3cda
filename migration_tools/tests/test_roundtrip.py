"""Export -> import -> verify carries every BSON corner across, byte for byte."""

import bson
import pytest
from bson.raw_bson import RawBSONDocument

from migration_tools.bsonfiles import RAW, bson_compare, id_sort_key
from migration_tools.dump import load_dump
from migration_tools.restore import import_dump
from migration_tools.tests.conftest import compare
from migration_tools.tests.factories import mixed_ids, populate_awkward
from migration_tools.verify import format_report, verify


def _raw_documents(db, name):
    return [doc.raw for doc in db.get_collection(name, codec_options=RAW).find({}, sort=[("_id", 1)])]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_awkward_bson_round_trip_is_identical(local_db, atlas_db, migrate, compress):
    populate_awkward(local_db.db)
    out, report = migrate(local_db, atlas_db, compress=compress)

    assert report.conflicts == 0
    assert report.checksums_checked
    result = compare(local_db, atlas_db)
    assert result.identical, format_report(result)
    for name in ("every.type", "mixed_ids", "field_order", "validated", "indexed"):
        assert _raw_documents(atlas_db.db, name) == _raw_documents(local_db.db, name), name
    assert {"empty", "empty.with.dots"} <= set(atlas_db.db.list_collection_names())
    # The dump itself also verifies against the target.
    from_dump = verify(
        load_dump(out), atlas_db.db, source_label=str(out), target_label="target", source_db=local_db.name
    )
    assert from_dump.identical, format_report(from_dump)


def test_special_values_survive_exactly(local_db, atlas_db, migrate):
    populate_awkward(local_db.db)
    migrate(local_db, atlas_db)
    copied = bson.decode(atlas_db.db.get_collection("every.type", codec_options=RAW).find_one().raw)
    assert copied["nan"] != copied["nan"]
    assert str(copied["negative_zero"]) == "-0.0"
    assert isinstance(copied["int64"], bson.Int64) and not isinstance(copied["int32"], bson.Int64)
    assert str(copied["decimal"]) == "1234.5678901234567890123456789012"
    assert list(copied["document"]) == ["z", "a"]
    assert copied["code_with_scope"].scope == {"x": 1}


def test_indexes_and_options_recreated_with_names_and_options(local_db, atlas_db, migrate):
    populate_awkward(local_db.db)
    migrate(local_db, atlas_db)
    indexes = {index["name"]: index for index in atlas_db.db["indexed"].list_indexes()}
    assert indexes["email_unique"]["unique"] is True
    assert list(indexes["a_b_compound"]["key"].items()) == [("a", 1), ("b", -1)]
    assert indexes["b_partial"]["partialFilterExpression"] == {"a": {"$gt": 0}}
    assert indexes["sp_sparse"]["sparse"] is True
    assert indexes["seen_ttl"]["expireAfterSeconds"] == 3600 * 24 * 365
    options = next(atlas_db.db.list_collections(filter={"name": "validated"}))["options"]
    assert options["validator"] == {"$jsonSchema": {"bsonType": "object", "required": ["name"]}}
    assert options["validationLevel"] == "strict"


@pytest.mark.slow
def test_two_seven_megabyte_documents(local_db, atlas_db, migrate):
    local_db.db["big"].insert_many([{"_id": 1, "blob": "x" * (7 << 20)}, {"_id": 2, "blob": "y" * (7 << 20)}])
    _, report = migrate(local_db, atlas_db, batch_bytes=8 << 20)
    assert report.inserted == 2
    result = compare(local_db, atlas_db)
    assert result.identical, format_report(result)


def test_client_sort_order_matches_the_server(local_db):
    local_db.db["ids"].insert_many([{"_id": value} for value in mixed_ids()])
    server_order = [
        doc["_id"] for doc in local_db.db.get_collection("ids", codec_options=RAW).find().sort("_id", 1)
    ]
    client_order = sorted(mixed_ids(), key=id_sort_key)
    assert [bson.encode({"v": v}) for v in client_order] == [bson.encode({"v": v}) for v in server_order]
    assert bson_compare(1, bson.Int64(1)) == 0
    assert bson_compare(float("nan"), -(10**30)) < 0
    assert isinstance(RawBSONDocument(bson.encode({"_id": 1}), RAW), RawBSONDocument)


# -- directory mode with the real tools ------------------------------------------------------------
def _assert_same_documents(source, target):
    result = compare(source, target)
    assert result.identical, format_report(result)
    for name in source.db.list_collection_names():
        assert _raw_documents(target.db, name) == _raw_documents(source.db, name), name


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_mongorestore_restores_our_folder_byte_for_byte(
    local_db, other_local_db, export, mongo_tools, compress
):
    populate_awkward(local_db.db)
    out = export(local_db, compress=compress)
    mongo_tools.run(
        "mongorestore",
        f"--dir={out}",
        f"--nsFrom={local_db.name}.*",
        f"--nsTo={other_local_db.name}.*",
        *(["--gzip"] if compress else []),
        uri=other_local_db.uri,
    )
    _assert_same_documents(local_db, other_local_db)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_we_import_mongodumps_folder_byte_for_byte(local_db, atlas_db, tmp_path, mongo_tools, compress):
    populate_awkward(local_db.db)
    mongo_tools.run(
        "mongodump",
        f"--db={local_db.name}",
        f"--out={tmp_path / 'md'}",
        *(["--gzip"] if compress else []),
        uri=local_db.uri,
    )
    dump = load_dump(tmp_path / "md")
    report = import_dump(
        atlas_db.client, dump, target_db=atlas_db.name, target_uri=atlas_db.uri, snapshot_dir=None
    )
    assert dump.manifest is None and report.conflicts == 0
    _assert_same_documents(local_db, atlas_db)
    from_dump = verify(dump, atlas_db.db, source_label="md", target_label="target", source_db=local_db.name)
    assert from_dump.identical, format_report(from_dump)
