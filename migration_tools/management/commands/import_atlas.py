from pathlib import Path

from migration_tools.progress import Progress
from migration_tools.restore import format_import_report, import_run, import_target, refuse_conflicts
from migration_tools.runs import Audit, MigrationCommand
from studymaster.mongo import redact


class Command(MigrationCommand):
    help = (
        "Import a dump (export_local's or mongodump's) into the target: checked before the first write, "
        "resumable, never overwriting. Exit 0 done, 1 refused or conflicts, 2 cannot run."
    )

    def add_arguments(self, parser):
        add = parser.add_argument
        add("--from", dest="from_dir", required=True, help="The dump folder, or its database folder.")
        add("--uri", help="Target server (default ATLAS_MONGODB_URI; no other fallback).")
        add("--db", help="Target database (default: the dump's).")
        add("--drop", action="store_true", help="Drop the dump's collections in the target first.")
        add("--yes", action="store_true", help="Confirm --drop.")
        add("--dry-run", action="store_true", help="Report what would be written; write nothing.")
        add("--no-snapshot", action="store_true", help="Skip the rollback snapshot of the target.")
        add("--snapshot-dir", help="Where the rollback snapshot goes (default: beside the dump).")
        add("--indexes-only", action="store_true", help="Recreate missing or different indexes only.")

    def handle(
        self, *args, from_dir, uri, db, drop, yes, dry_run, no_snapshot, snapshot_dir, indexes_only, **options
    ):
        verbosity = options["verbosity"]
        uri, uri_name = import_target(uri)
        audit = Audit(
            "import_atlas", source=str(from_dir), target=uri, database=db or "", warn=self.stderr.write
        )
        with audit.running():
            run = import_run(
                from_dir=Path(from_dir),
                uri=uri,
                uri_name=uri_name,
                db=db,
                drop=drop,
                yes=yes,
                dry_run=dry_run,
                no_snapshot=no_snapshot,
                snapshot_dir=Path(snapshot_dir) if snapshot_dir else None,
                indexes_only=indexes_only,
                progress=Progress.for_command(self.stdout, verbosity),
                audit=audit,
                warn=self.stderr.write,
            )
            if verbosity >= 1:
                self.stdout.write(
                    format_import_report(
                        run.report, seconds=run.seconds, verbosity=verbosity, target=redact(uri)
                    )
                )
            refuse_conflicts(run.report)
