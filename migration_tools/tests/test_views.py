"""Views: exported, imported and verified by their definition, from folders and archives, ours and mongodump's."""

import pytest
from bson import SON

from migration_tools.archive import dump_database_archive, read_archive
from migration_tools.dump import load_dump, select_collections
from migration_tools.restore import format_import_report, import_dump
from migration_tools.tests.conftest import compare
from migration_tools.tests.factories import populate_awkward
from migration_tools.verify import format_report

VIEW = "indexed_positive"  # populate_awkward's view


def _view(db, name):
    (info,) = [info for info in db.list_collections() if info["name"] == name]
    return info["type"], dict(info["options"])


def _create_view(db, name, view_on, pipeline, **options):
    db.command(SON([("create", name), ("viewOn", view_on), ("pipeline", pipeline), *options.items()]))


def _import(dump, target, **kwargs):
    return import_dump(
        target.client, dump, target_db=target.name, target_uri=target.uri, snapshot_dir=None, **kwargs
    )


def _export_and_load(source, tmp_path, form):
    """Our export of ``source`` in ``form``, read back: (the dump, a closer)."""
    if form == "folder":
        from migration_tools.dump import dump_database

        dump_database(source.client, source.name, tmp_path / "d", source_uri=source.uri)
        return load_dump(tmp_path / "d"), lambda: None
    dump_database_archive(
        source.client, source.name, tmp_path / "a.archive", source_uri=source.uri, compress=form == "gzip"
    )
    archive = read_archive(tmp_path / "a.archive", spool_dir=tmp_path)
    return archive.dump(), archive.close


@pytest.mark.parametrize("form", ["folder", "archive", "gzip"])
def test_our_dumps_carry_views_and_import_creates_them(local_db, atlas_db, tmp_path, form):
    populate_awkward(local_db.db)
    dump, close = _export_and_load(local_db, tmp_path, form)
    try:
        assert list(dump.views) == [VIEW] and VIEW not in dump.collections
        assert list(dump.manifest["views"]) == [VIEW]
        report = _import(dump, atlas_db)
        again = _import(dump, atlas_db)
    finally:
        close()
    assert _view(atlas_db.db, VIEW) == _view(local_db.db, VIEW)
    (row,) = [item for item in report.collections if item.name == VIEW]
    assert row.created and row.view_on == "indexed" and report.conflicts == 0
    assert f"  {VIEW:<36} view on indexed" in format_import_report(report, seconds=1, verbosity=1, target="t")
    (row,) = [item for item in again.collections if item.name == VIEW]
    assert not row.created and row.option_differences == [] and again.conflicts == 0
    result = compare(local_db, atlas_db)
    assert result.identical, format_report(result)
    assert [(d.name, d.view) for d in result.collections if d.view] == [(VIEW, True)]


def test_a_view_defined_otherwise_is_a_conflict_left_alone_until_drop(local_db, atlas_db, tmp_path):
    populate_awkward(local_db.db)
    dump, _ = _export_and_load(local_db, tmp_path, "folder")
    _import(dump, atlas_db)
    atlas_db.db.drop_collection(VIEW)
    _create_view(atlas_db.db, VIEW, "indexed", [{"$match": {"a": 2}}])
    report = _import(dump, atlas_db)
    (row,) = [item for item in report.collections if item.name == VIEW]
    assert report.conflicts == 2  # its collation and its pipeline
    assert [text.split(":")[0] for text in row.option_differences] == ["collation", "pipeline"]
    assert _view(atlas_db.db, VIEW)[1]["pipeline"] == [{"$match": {"a": 2}}]
    result = compare(local_db, atlas_db)
    assert not result.identical and "indexed_positive: pipeline: dump" in format_report(result)
    report = _import(dump, atlas_db, drop=True)
    assert report.conflicts == 0 and _view(atlas_db.db, VIEW) == _view(local_db.db, VIEW)


def test_a_view_is_created_after_the_view_it_reads(atlas_db, local_db, tmp_path):
    local_db.db["items"].insert_many([{"_id": n, "a": n} for n in range(5)])
    _create_view(local_db.db, "a_first", "b_second", [{"$match": {"a": {"$lt": 3}}}])
    _create_view(local_db.db, "b_second", "items", [{"$match": {"a": {"$gt": 0}}}])
    dump, _ = _export_and_load(local_db, tmp_path, "folder")
    report = _import(dump, atlas_db)
    assert [item.name for item in report.collections] == ["items", "b_second", "a_first"]
    assert sorted(doc["_id"] for doc in atlas_db.db["a_first"].find()) == [1, 2]


def test_verify_tells_a_reordered_sort_from_a_reordered_schema(local_db, atlas_db):
    schema = SON([("bsonType", "object"), ("required", ["a"])])
    for db, order in ((local_db.db, [("a", 1), ("b", 1)]), (atlas_db.db, [("b", 1), ("a", 1)])):
        db.create_collection(
            "items",
            validator={"$jsonSchema": schema if db is local_db.db else SON(reversed(list(schema.items())))},
        )
        _create_view(db, "sorted", "items", [{"$sort": SON(order)}])
    result = compare(local_db, atlas_db)
    details = format_report(result)
    assert [(d.name, d.option_differences != []) for d in result.collections] == [
        ("items", False),
        ("sorted", True),
    ]
    assert "sorted: pipeline: dump" in details and "RESULT: DIFFERENCES FOUND" in details


def test_a_changed_view_definition_in_our_dump_is_refused(local_db, atlas_db, tmp_path):
    populate_awkward(local_db.db)
    dump, _ = _export_and_load(local_db, tmp_path, "folder")
    path = dump.views[VIEW].metadata_path
    path.write_text(path.read_text().replace('"$gt"', '"$lt"'))
    with pytest.raises(Exception, match=f"{VIEW}.metadata.json: its SHA-256 does not match the manifest"):
        _import(load_dump(tmp_path / "d"), atlas_db)
    assert atlas_db.db.list_collection_names() == []


def test_collection_selects_views_too(local_db, tmp_path):
    populate_awkward(local_db.db)
    dump, _ = _export_and_load(local_db, tmp_path, "folder")
    chosen = select_collections(dump, ["indexed", VIEW])
    assert list(chosen.collections) == ["indexed"] and list(chosen.views) == [VIEW]


# -- the real tools ------------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["folder", "archive"])
def test_mongodumps_views_are_imported_and_mongorestore_restores_ours(
    local_db, other_local_db, atlas_db, tmp_path, mongo_tools, form
):
    populate_awkward(local_db.db)
    where = f"--out={tmp_path / 'md'}" if form == "folder" else f"--archive={tmp_path / 'md.archive'}"
    mongo_tools.run("mongodump", f"--db={local_db.name}", where, uri=local_db.uri)
    if form == "folder":
        dump = load_dump(tmp_path / "md")
        report = _import(dump, atlas_db)
    else:
        with read_archive(tmp_path / "md.archive") as archive:
            dump = archive.dump()
            report = _import(dump, atlas_db)
    assert list(dump.views) == [VIEW] and dump.warnings == [] and report.conflicts == 0
    assert _view(atlas_db.db, VIEW) == _view(local_db.db, VIEW)

    ours, close = _export_and_load(local_db, tmp_path, form)
    close()
    source = tmp_path / "d" if form == "folder" else tmp_path / "a.archive"
    mongo_tools.run(
        "mongorestore",
        f"--nsFrom={local_db.name}.*",
        f"--nsTo={other_local_db.name}.*",
        f"--dir={source}" if form == "folder" else f"--archive={source}",
        uri=other_local_db.uri,
    )
    assert _view(other_local_db.db, VIEW) == _view(local_db.db, VIEW)


@pytest.mark.parametrize("form", ["folder", "archive"])
def test_options_mongodump_may_have_reordered_are_named_in_a_warning(local_db, tmp_path, mongo_tools, form):
    local_db.db["items"].insert_one({"_id": 1})
    _create_view(local_db.db, "by_price", "items", [{"$sort": SON([("price", 1), ("weight", 1)])}])
    where = f"--out={tmp_path / 'md'}" if form == "folder" else f"--archive={tmp_path / 'md.archive'}"
    mongo_tools.run("mongodump", f"--db={local_db.name}", where, uri=local_db.uri)
    if form == "folder":
        warnings = load_dump(tmp_path / "md").warnings
        made_by = "if a mongodump before 100.9.1 made this dump, it may have changed"
    else:
        with read_archive(tmp_path / "md.archive") as archive:
            warnings = archive.dump().warnings
        made_by = "mongodump 100.8.0 may have changed"
    (warning,) = warnings
    assert warning.startswith(made_by) and "(TOOLS-3411): by_price (pipeline[0].$sort)." in warning
    ours, _ = _export_and_load(local_db, tmp_path, "folder")
    assert ours.warnings == []  # our own metadata keeps the server's order
