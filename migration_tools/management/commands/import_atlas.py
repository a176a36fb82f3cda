from pathlib import Path

from migration_tools.progress import Progress
from migration_tools.restore import import_run
from migration_tools.runs import Audit, MigrationCommand

# Passed to import_run as they are.
IMPORT_OPTIONS = ("source", "archive", "source_db", "collections", "spool_dir", "uri", "db", "drop", "yes")
IMPORT_OPTIONS += ("dry_run", "no_snapshot", "indexes_only", "max_ops_per_second")


class Command(MigrationCommand):
    help = (
        "Import a dump (export_local's or mongodump's: a folder or an archive) into the target: checked "
        "whole before the first write, resumable, never overwriting. Exit 0 done, 1 refused or conflicts, "
        "2 cannot run, 130 interrupted."
    )
    interrupted_message = "interrupted; run the same command again to resume"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        add = parser.add_argument
        add("--from", dest="source", help="The dump folder (or its database folder), or an archive file.")
        add("--archive", nargs="?", const="-", metavar="PATH|-", help="An archive file; - or none: stdin.")
        add("--gzip", action="store_true", help="Accepted as mongorestore spells it: gzip is detected.")
        add("--source-db", help="The dump's database to import, when it holds several.")
        add("--collection", action="append", dest="collections", help="Only this collection (repeatable).")
        add("--spool-dir", help="Where a piped or gzipped archive is copied to be checked (default: TMPDIR).")
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

    def handle(self, *args, snapshot_dir, verbosity, **options):
        import_run(
            **{key: options[key] for key in IMPORT_OPTIONS},
            snapshot_dir=Path(snapshot_dir) if snapshot_dir else None,
            progress=Progress.for_command(self.stdout, verbosity),
            audit=Audit("import_atlas", warn=self.stderr.write),
            warn=self.stderr.write,
            announce=self.stdout.write,
            verbosity=verbosity,
        )
