from migration_tools.progress import Progress
from migration_tools.runs import Audit, MigrationCommand
from migration_tools.verify import verify_run


class Command(MigrationCommand):
    help = (
        "Compare the target with the source (or a dump) document by document, as exact BSON, plus indexes, "
        "options and the domain invariants. Exit 0 identical, 1 differences or refused, 2 cannot run, "
        "130 interrupted."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--source-uri", help="Source server (default LOCAL_MONGODB_URI; no other fallback)."
        )
        parser.add_argument(
            "--target-uri", help="Target server (default ATLAS_MONGODB_URI; no other fallback)."
        )
        parser.add_argument("--db", help="Source database (default MONGODB_DB_NAME, or the dump's).")
        parser.add_argument("--target-db", help="Target database (default MONGODB_DB_NAME).")
        parser.add_argument("--dump", help="Compare the target with this dump instead of a live source.")
        parser.add_argument("--json", dest="json_path", help="Also write the report as JSON to this file.")

    def handle(self, *args, source_uri, target_uri, db, target_db, dump, json_path, verbosity, **options):
        verify_run(
            source_uri=source_uri,
            target_uri=target_uri,
            db=db,
            target_db=target_db,
            dump=dump,
            progress=Progress.for_command(self.stdout, verbosity),
            audit=Audit("verify_migration", warn=self.stderr.write),
            announce=self.stdout.write if verbosity >= 1 else lambda line: None,
            json_path=json_path,
        )
