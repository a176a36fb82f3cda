from django.conf import settings

from migration_tools.dump import export_run, format_export_collections, format_export_summary
from migration_tools.progress import Progress
from migration_tools.runs import Audit, MigrationCommand


class Command(MigrationCommand):
    help = (
        "Export a database in mongodump's layout, with a manifest of SHA-256 checksums. "
        "Exit 0 done, 1 refused (folder not empty, unknown collection), 2 cannot run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="Folder to write the dump to (new or empty).")
        parser.add_argument("--uri", help="Source server (default LOCAL_MONGODB_URI).")
        parser.add_argument("--db", help="Source database (default MONGODB_DB_NAME).")
        parser.add_argument(
            "--collection",
            action="append",
            dest="collections",
            help="Export only this collection (repeatable).",
        )
        parser.add_argument("--gzip", action="store_true", help="Compress every file (.gz).")

    def handle(self, *args, out, uri, db, collections, gzip, verbosity, **options):
        uri_name = "--uri" if uri else "LOCAL_MONGODB_URI"
        uri = uri or settings.LOCAL_MONGODB_URI
        db_name = db or settings.MONGODB_DB_NAME
        audit = Audit("export_local", source=uri, target=str(out), database=db_name, warn=self.stderr.write)
        with audit.running():
            export = export_run(
                out=out,
                uri=uri,
                uri_name=uri_name,
                db_name=db_name,
                collections=collections,
                compress=gzip,
                progress=Progress.for_command(self.stdout, verbosity),
                audit=audit,
            )
            if verbosity >= 2:
                for line in format_export_collections(export):
                    self.stdout.write(line)
            for warning in export.warnings:
                self.stderr.write(f"warning: {warning}")
            if verbosity >= 1:
                self.stdout.write(format_export_summary(export))
