import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from migration_tools.bsonfiles import DamagedDumpError
from migration_tools.cli import Audit, cannot_run, client_for, refuse, server_key
from migration_tools.dump import load_dump
from migration_tools.progress import Progress
from migration_tools.restore import ImportRefused, default_snapshot_dir, format_import_report, import_dump
from studymaster.mongo import redact


class Command(BaseCommand):
    # The checks load every URLconf and app; a migration run needs none of it (~0.2 s a run).
    requires_system_checks = []
    help = (
        "Import a dump (export_local's or mongodump's) into the target: checked before the first write, "
        "resumable, never overwriting. Exit 0 done, 1 refused or conflicts, 2 cannot run."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--from", dest="from_dir", required=True, help="The dump folder, or its database folder."
        )
        parser.add_argument("--uri", help="Target server (default ATLAS_MONGODB_URI; no other fallback).")
        parser.add_argument("--db", help="Target database (default: the dump's).")
        parser.add_argument(
            "--drop", action="store_true", help="Drop the dump's collections in the target first."
        )
        parser.add_argument("--yes", action="store_true", help="Confirm --drop.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would be written; write nothing."
        )
        parser.add_argument(
            "--no-snapshot", action="store_true", help="Skip the rollback snapshot of the target."
        )
        parser.add_argument(
            "--snapshot-dir", help="Where the rollback snapshot goes (default: beside the dump)."
        )
        parser.add_argument(
            "--indexes-only", action="store_true", help="Recreate missing or different indexes only."
        )

    def handle(
        self, *args, from_dir, uri, db, drop, yes, dry_run, no_snapshot, snapshot_dir, indexes_only, **options
    ):
        verbosity = options["verbosity"]
        uri_name = "--uri" if uri else "ATLAS_MONGODB_URI"
        uri = uri or settings.ATLAS_MONGODB_URI
        if not uri:
            raise cannot_run(
                "No target: set ATLAS_MONGODB_URI or pass --uri. import_atlas never falls back to MONGODB_URI."
            )
        audit = Audit(
            "import_atlas", source=str(from_dir), target=uri, database=db or "", warn=self.stderr.write
        )
        with audit.running():
            if drop and not yes and not dry_run:
                raise refuse("--drop deletes the dump's collections in the target: add --yes to confirm.")
            try:
                dump = load_dump(Path(from_dir))
            except DamagedDumpError as exc:
                raise refuse(f"Refused, nothing written: {exc}") from None
            target_db = db or dump.db_name
            audit.database = target_db
            target_server = server_key(uri)
            if (
                target_server
                and target_db == settings.MONGODB_DB_NAME
                and target_server == server_key(settings.LOCAL_MONGODB_URI)
            ):
                raise refuse(
                    f"The target {redact(uri)} database {target_db} is the local source itself "
                    "(LOCAL_MONGODB_URI); name the Atlas cluster with --uri or ATLAS_MONGODB_URI."
                )
            if dump.manifest is None:
                self.stderr.write(
                    f"warning: {dump.root} has no manifest.json (a mongodump folder?): no checksum could be "
                    "checked; the BSON framing and every document were."
                )
            snapshot = None
            if not no_snapshot:
                snapshot = Path(snapshot_dir) if snapshot_dir else default_snapshot_dir(dump, target_db)
            client = client_for(uri, name=uri_name)
            started = time.monotonic()
            try:
                report = import_dump(
                    client,
                    dump,
                    target_db=target_db,
                    target_uri=uri,
                    drop=drop,
                    dry_run=dry_run,
                    indexes_only=indexes_only,
                    snapshot_dir=snapshot,
                    progress=Progress.for_command(self.stdout, verbosity),
                )
            except (DamagedDumpError, ImportRefused) as exc:
                raise refuse(f"Refused, nothing written: {exc}") from None
            finally:
                client.close()
            seconds = time.monotonic() - started
            audit.counts = {
                c.name: {"inserted": c.inserted, "identical": c.identical, "conflicts": c.conflicts}
                for c in report.collections
            }
            audit.checksums = {
                name: item["content_hash"]
                for name, item in ((dump.manifest or {}).get("collections") or {}).items()
            }
            if verbosity >= 1:
                self.stdout.write(
                    format_import_report(report, seconds=seconds, verbosity=verbosity, target=redact(uri))
                )
            if report.conflicts:
                raise refuse(
                    f"{report.conflicts} conflict(s): documents, indexes or collection options that exist in the "
                    "target with other content were left untouched. Inspect them, then --drop --yes, "
                    "--indexes-only (indexes) or fix the target."
                )
