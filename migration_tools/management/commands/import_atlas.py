from pathlib import Path

from migration_tools.progress import Progress
from migration_tools.restore import import_run
from migration_tools.runs import Audit, MigrationCommand


class Command(MigrationCommand):
    help = (
        "Import a dump (export_local's or mongodump's) into the target: checked before the first write, "
        "resumable, never overwriting. Exit 0 done, 1 refused or conflicts, 2 cannot run, 130 interrupted."
    )
    interrupted_message = "interrupted; run the same command again to resume"

    def add_arguments(self, parser):
        add = parser.add_argument
        add("--from", dest="from_dir", required=True, help="The dump folder, or its database folder.")
        add("--uri", help="Target server (default ATLAS_MONGODB_URI; no other fallback).")
        add("--db", help="Target database (default MONGODB_DB_NAME, the one the application reads).")
        add(
            "--drop",
            action="store_true",
            help="Make the dump's collections in the target hold the dump alone.",
        )
        add("--yes", action="store_true", help="Confirm --drop.")
        add("--dry-run", action="store_true", help="Report what would be written; write nothing.")
        add("--no-snapshot", action="store_true", help="Skip the rollback snapshot of the target.")
        add("--snapshot-dir", help="Where the rollback snapshot goes (default: beside the dump).")
        add("--indexes-only", action="store_true", help="Recreate missing or different indexes only.")

    def handle(self, *args, from_dir, uri, db, snapshot_dir, verbosity, **options):
        import_run(
            from_dir=Path(from_dir),
            uri=uri,
            db=db,
            drop=options["drop"],
            yes=options["yes"],
            dry_run=options["dry_run"],
            no_snapshot=options["no_snapshot"],
            snapshot_dir=Path(snapshot_dir) if snapshot_dir else None,
            indexes_only=options["indexes_only"],
            progress=Progress.for_command(self.stdout, verbosity),
            audit=Audit("import_atlas", warn=self.stderr.write),
            warn=self.stderr.write,
            announce=self.stdout.write,
            verbosity=verbosity,
        )
