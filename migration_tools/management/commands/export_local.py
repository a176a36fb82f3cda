from migration_tools.dump import export_run, format_export_collections, format_export_summary
from migration_tools.progress import Progress
from migration_tools.runs import Audit, MigrationCommand


class Command(MigrationCommand):
    help = (
        "Export a database in mongodump's layout, with a manifest of SHA-256 checksums. Exit 0 done, "
        "1 refused (folder not empty, empty database, unknown collection), 2 cannot run, 130 interrupted."
    )
    interrupted_message = "interrupted; nothing was kept in the --out folder; run the same command again"

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="Folder to write the dump to (new or empty).")
        parser.add_argument("--uri", help="Source server (default LOCAL_MONGODB_URI; no other fallback).")
        parser.add_argument("--db", help="Source database (default MONGODB_DB_NAME).")
        parser.add_argument(
            "--collection",
            action="append",
            dest="collections",
            help="Export only this collection (repeatable).",
        )
        parser.add_argument("--gzip", action="store_true", help="Compress every file (.gz).")

    def handle(self, *args, out, uri, db, collections, gzip, verbosity, **options):
        export = export_run(
            out=out,
            uri=uri,
            db_name=db,
            collections=collections,
            compress=gzip,
            progress=Progress.for_command(self.stdout, verbosity),
            audit=Audit("export_local", warn=self.stderr.write),
            announce=self.stdout.write if verbosity >= 1 else lambda line: None,
        )
        if verbosity >= 2:
            for line in format_export_collections(export):
                self.stdout.write(line)
        for warning in export.warnings:
            self.stderr.write(f"warning: {warning}")
        if verbosity >= 1:
            self.stdout.write(format_export_summary(export))
