from django.conf import settings

from migration_tools.progress import Progress
from migration_tools.runs import Audit, MigrationCommand
from migration_tools.verify import (
    format_report,
    refuse_differences,
    verify_run,
    verify_target,
    write_report_json,
)


class Command(MigrationCommand):
    help = (
        "Compare the target with the source (or a dump) document by document, as exact BSON, plus "
        "indexes, options and the domain invariants. Exit 0 identical, 1 differences, 2 cannot run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--source-uri", help="Source server (default LOCAL_MONGODB_URI).")
        parser.add_argument("--target-uri", help="Target server (default ATLAS_MONGODB_URI).")
        parser.add_argument("--db", help="Source database (default MONGODB_DB_NAME, or the dump's).")
        parser.add_argument("--target-db", help="Target database (default: the same as --db).")
        parser.add_argument("--dump", help="Compare the target with this dump instead of a live source.")
        parser.add_argument("--json", dest="json_path", help="Also write the report as JSON to this file.")

    def handle(self, *args, source_uri, target_uri, db, target_db, dump, json_path, verbosity, **options):
        target_uri = verify_target(target_uri)
        source_uri = source_uri or settings.LOCAL_MONGODB_URI
        audit = Audit(
            "verify_migration",
            source=dump or source_uri,
            target=target_uri,
            database=db or "",
            warn=self.stderr.write,
        )
        with audit.running():
            report = verify_run(
                source_uri=source_uri,
                target_uri=target_uri,
                db=db,
                target_db=target_db,
                dump=dump,
                progress=Progress.for_command(self.stdout, verbosity),
                audit=audit,
            )
            if json_path:
                write_report_json(report, json_path)
            if verbosity >= 1:
                self.stdout.write(format_report(report))
            refuse_differences(report)
