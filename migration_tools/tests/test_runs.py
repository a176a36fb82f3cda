"""What the three commands share, called without call_command: safety rules, exit codes, audit counts."""

import pytest
from django.core.management.base import CommandError
from django.test import override_settings

from migration_tools import runs
from migration_tools.dump import export_run, format_export_collections, format_export_summary
from migration_tools.models import MigrationRun
from migration_tools.progress import Progress
from migration_tools.restore import (
    ImportReport,
    import_run,
    refuse_conflicts,
    refuse_local_source_as_target,
)
from migration_tools.runs import (
    AUDIT_COLLECTION,
    EXIT_CANNOT_RUN,
    EXIT_INTERRUPTED,
    EXIT_REFUSED,
    SHARED_TIER_PACE,
    Audit,
    OperationPacer,
    named_uri,
    pace_for,
    paced_client,
    same_database,
    server_key,
)
from migration_tools.verify import VerifyReport, refuse_differences, verify_run

pytestmark = pytest.mark.django_db


def test_the_exit_codes_scripts_rely_on():
    assert (EXIT_REFUSED, EXIT_CANNOT_RUN, EXIT_INTERRUPTED) == (1, 2, 130)


def test_server_key_tells_the_same_server_behind_other_spellings():
    assert server_key("mongodb://localhost/") == server_key("mongodb://127.0.0.1:27017/app")
    assert server_key("mongodb://[::1]:27017/?directConnection=true") == server_key("mongodb://localhost/")
    assert server_key("mongodb://a.example.com,b.example.com:27018/") == frozenset(
        {"a.example.com:27017", "b.example.com:27018"}
    )
    assert server_key("http://nope") == frozenset()


def test_same_database_needs_the_same_server_and_the_same_name():
    assert same_database(
        "mongodb://localhost/", "studymaster", "mongodb://127.0.0.1:27017/?tls=false", "studymaster"
    )
    assert not same_database("mongodb://localhost/", "studymaster", "mongodb://localhost/", "other")
    assert not same_database(
        "mongodb://localhost/", "studymaster", "mongodb://atlas.example.com/", "studymaster"
    )
    assert not same_database("http://nope", "studymaster", "http://nope", "studymaster")


def test_a_side_is_named_or_the_command_cannot_run():
    named = {"option": "--uri", "variable": "ATLAS_MONGODB_URI", "role": "target", "command": "import_atlas"}
    assert named_uri("mongodb://atlas.example.com/", **named) == ("mongodb://atlas.example.com/", "--uri")
    with override_settings(ATLAS_MONGODB_URI="mongodb://atlas.example.com/"):
        assert named_uri(None, **named) == ("mongodb://atlas.example.com/", "ATLAS_MONGODB_URI")
    with (
        override_settings(ATLAS_MONGODB_URI="", MONGODB_URI="mongodb://app.example.com/"),
        pytest.raises(CommandError) as refused,
    ):
        named_uri(None, **named)
    assert refused.value.returncode == EXIT_CANNOT_RUN and "never falls back to MONGODB_URI" in str(
        refused.value
    )


@override_settings(LOCAL_MONGODB_URI="mongodb://localhost:27017/", MONGODB_DB_NAME="studymaster")
def test_the_local_source_is_refused_as_the_target():
    with pytest.raises(CommandError) as refused:
        refuse_local_source_as_target("mongodb://127.0.0.1/", "studymaster")
    assert refused.value.returncode == EXIT_REFUSED and "local source itself" in str(refused.value)
    refuse_local_source_as_target("mongodb://127.0.0.1/", "another_database")
    refuse_local_source_as_target("mongodb://atlas.example.com/", "studymaster")


def test_conflicts_and_differences_are_exit_one():
    refuse_conflicts(ImportReport(dump_db="d", target_db="t", checksums_checked=True))
    refuse_differences(VerifyReport(source="s", target="t", source_db="d", target_db="t", excluded=[]))


def _import_run(**options):
    """import_run with the options import_atlas passes by default."""
    defaults = {"db": None, "drop": False, "yes": False, "dry_run": False, "announce": lambda line: None}
    defaults.update(no_snapshot=True, snapshot_dir=None, indexes_only=False, progress=Progress(), warn=print)
    defaults.update(source=None, archive=None, source_db=None, collections=None, spool_dir=None)
    return import_run(**{**defaults, **options})


def test_export_import_verify_record_their_runs_where_they_belong(local_db, atlas_db, tmp_path):
    local_db.db["items"].insert_many([{"_id": n} for n in range(3)])
    out = str(tmp_path / "dump")
    audit = Audit("export_local", warn=print)
    lines = []
    export = export_run(
        out=out,
        archive=None,
        uri=local_db.uri,
        db_name=local_db.name,
        collections=None,
        compress=False,
        progress=Progress(),
        audit=audit,
        announce=lines.append,
    )
    assert lines[0].startswith(f"export_local: reads database {local_db.name} on ") and "(--uri)" in lines[0]
    assert audit.counts == {"items": 3} and len(audit.checksums["items"]) == 64
    assert format_export_collections(export) == [f"  {'items':<40} {3:>9} documents  {export.size} B"]
    assert format_export_summary(export).startswith(
        f"Exported 3 documents ({export.size} B) in 1 collections"
    )
    # Export records in the application's database; never in the source it read.
    assert MigrationRun.objects.get().command == "export_local"
    assert AUDIT_COLLECTION not in local_db.db.list_collection_names()

    warnings, lines = [], []
    audit = Audit("import_atlas")
    run = _import_run(
        source=str(tmp_path / "dump"),
        uri=atlas_db.uri,
        db=atlas_db.name,
        audit=audit,
        warn=warnings.append,
        announce=lines.append,
    )
    assert (run.report.inserted, audit.database, warnings) == (3, atlas_db.name, [])
    assert audit.counts == {"items": {"inserted": 3, "identical": 0, "conflicts": 0, "deleted": 0}}
    assert lines[0] == (
        f"import_atlas: reads the dump {tmp_path / 'dump'} (database {local_db.name}) and writes database "
        f"{atlas_db.name} on {audit_uri(atlas_db.uri)} (--uri), where its audit record goes too."
    )

    audit, lines = Audit("verify_migration"), []
    report = verify_run(
        source_uri=local_db.uri,
        target_uri=atlas_db.uri,
        db=local_db.name,
        target_db=atlas_db.name,
        dump=None,
        progress=Progress(),
        audit=audit,
        announce=lines.append,
    )
    assert report.identical and audit.counts["items"]["target"] == 3
    assert lines[0].startswith("verify_migration: reads database ") and lines[-1].endswith(
        "RESULT: IDENTICAL"
    )
    # Import and verify record in the target's database, where they hold rights.
    records = list(
        atlas_db.db[AUDIT_COLLECTION].find({}, {"_id": 0, "command": 1, "status": 1, "exit_code": 1})
    )
    assert records == [
        {"command": "import_atlas", "status": "ok", "exit_code": 0},
        {"command": "verify_migration", "status": "ok", "exit_code": 0},
    ]
    assert MigrationRun.objects.count() == 1


def audit_uri(uri):
    from studymaster.mongo import redact

    return redact(uri)


def test_drop_without_yes_is_refused_before_anything_is_read(tmp_path):
    with pytest.raises(CommandError) as refused:
        _import_run(
            source=str(tmp_path / "nothing here"),
            uri="mongodb://127.0.0.1/",
            drop=True,
            audit=Audit("import_atlas"),
        )
    assert refused.value.returncode == EXIT_REFUSED and "--yes" in str(refused.value)


def test_an_audit_record_that_cannot_be_written_warns_with_its_reason_and_the_run_goes_on():
    """Issue 11, item 15: the ORM's DatabaseError has no text of its own; the reason is its cause's."""
    from django.db import DatabaseError
    from pymongo.errors import ServerSelectionTimeoutError

    def unreachable():
        try:
            raise ServerSelectionTimeoutError("127.0.0.1:1: [Errno 111] Connection refused, Timeout: 0.3s")
        except ServerSelectionTimeoutError as cause:
            raise DatabaseError() from cause

    warnings = []
    audit = Audit("export_local", warn=warnings.append)
    with audit.recording(unreachable, location="the application's database"):
        ran = True
    assert ran and warnings == [
        "warning: the audit record (MigrationRun) in the application's database was not written: "
        "unreachable: No MongoDB server answered (127.0.0.1:1: [Errno 111] Connection refused, Timeout: 0.3s). "
        "Check the host, the port, that the server is running, and, on Atlas, the IP access list."
    ]


def test_the_audit_record_takes_the_exit_code_the_command_ends_with(atlas_db):
    for raised, expected in (
        (KeyboardInterrupt(), ("interrupted", 130)),
        (OSError(28, "No space left on device", "/backups/x.bson"), ("failed", 2)),
        (CommandError("refused", returncode=EXIT_REFUSED), ("refused", 1)),
    ):
        audit = Audit("import_atlas")
        with pytest.raises((KeyboardInterrupt, CommandError)) as caught, audit.recording(atlas_db.db):
            raise raised
        record = atlas_db.db[AUDIT_COLLECTION].find_one(sort=[("started_at", -1)])
        assert (record["status"], record["exit_code"]) == expected
        code = 130 if isinstance(caught.value, KeyboardInterrupt) else caught.value.returncode
        assert code == expected[1]
        atlas_db.db[AUDIT_COLLECTION].delete_many({})


def test_the_pace_of_an_atlas_host_is_the_shared_tiers_unless_told_otherwise():
    atlas = "mongodb+srv://cluster0.abcde.mongodb.net/"
    assert pace_for(atlas, None) == SHARED_TIER_PACE < 100
    assert pace_for("mongodb://shard-00-00.abcde.mongodb.net:27017,b.example.com/", None) == SHARED_TIER_PACE
    assert pace_for("mongodb://127.0.0.1:27017/", None) is None
    assert pace_for(atlas, 0) is None and pace_for("mongodb://127.0.0.1/", 25) == 25
    assert pace_for("nonsense", None) is None  # client_for reports it


def test_the_pacer_spaces_every_command_of_every_thread(monkeypatch):
    clock, slept = [100.0], []
    monkeypatch.setattr(runs.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(runs.time, "sleep", lambda seconds: slept.append(seconds))
    pacer = OperationPacer(10)
    for _ in range(5):
        pacer.started(None)
    assert slept == pytest.approx([0.1, 0.2, 0.3, 0.4])
    clock[0] += 10  # a quiet while: the next command goes at once
    slept.clear()
    pacer.started(None)
    assert slept == []


def test_a_paced_client_hears_of_each_getmore(local_db, monkeypatch):
    local_db.db["items"].insert_many([{"_id": n} for n in range(50)])
    heard = []
    monkeypatch.setattr(OperationPacer, "started", lambda self, event: heard.append(event.command_name))
    client = paced_client(local_db.uri, name="--uri", max_ops_per_second=1000)
    try:
        assert len(list(client[local_db.name]["items"].find(batch_size=5))) == 50
    finally:
        client.close()
    assert heard.count("find") == 1 and heard.count("getMore") >= 9
