from migration_tools.progress import Progress
from migration_tools.runs import Audit, MigrationCommand
from migration_tools.verify import verify_run

# Passed to verify_run as they are.
VERIFY_OPTIONS = ("source_uri", "target_uri", "db", "target_db", "dump", "source_db", "spool_dir")
VERIFY_OPTIONS += ("json_path", "max_ops_per_second")


class Command(MigrationCommand):
    help = (
        "Compare the target with the source (or a dump: a folder or an archive) document by document, as "
        "exact BSON, plus indexes, options, views and the domain invariants. Exit 0 identical, 1 "
        "differences or refused, 2 cannot run, 130 interrupted."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        add = parser.add_argument
        add("--source-uri", help="Source server (default LOCAL_MONGODB_URI; no other fallback).")
        add("--target-uri", help="Target server (default ATLAS_MONGODB_URI; no other fallback).")
        add("--db", help="Source database (default MONGODB_DB_NAME, or the dump's).")
        add("--target-db", help="Target database (default MONGODB_DB_NAME).")
        add("--dump", help="Compare with this dump instead: a folder, an archive file, or - (stdin).")
        add("--source-db", help="With --dump, the dump's database, when it holds several.")
        add("--spool-dir", help="Where a piped or gzipped archive is copied to be checked.")
        add("--json", dest="json_path", help="Also write the report as JSON to this file.")

    def handle(self, *args, verbosity, **options):
        verify_run(
            **{key: options[key] for key in VERIFY_OPTIONS},
            progress=Progress.for_command(self.stdout, verbosity),
            audit=Audit("verify_migration", warn=self.stderr.write),
            announce=self.stdout.write if verbosity >= 1 else lambda line: None,
            warn=self.stderr.write,
        )
