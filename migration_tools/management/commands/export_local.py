from migration_tools.dump import export_run, format_export_collections, format_export_summary
from migration_tools.progress import Progress
from migration_tools.runs import Audit, MigrationCommand


class Command(MigrationCommand):
    help = (
        "Export a database in mongodump's folder layout with a manifest of SHA-256 checksums, or as one "
        "mongodump archive (a file, or standard output). Exit 0 done, 1 refused (folder not empty, file "
        "exists, empty database, unknown collection), 2 cannot run, 130 interrupted."
    )
    interrupted_message = "interrupted; nothing was kept in the --out folder; run the same command again"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        add = parser.add_argument
        add("--out", help="Folder to write the dump to (new or empty).")
        archive_help = "Write one mongodump archive to PATH (and PATH.manifest.json); - or none: stdout."
        add("--archive", nargs="?", const="-", metavar="PATH|-", help=archive_help)
        add("--uri", help="Source server (default LOCAL_MONGODB_URI; no other fallback).")
        add("--db", help="Source database (default MONGODB_DB_NAME).")
        add(
            "--collection",
            action="append",
            dest="collections",
            help="Export only this collection (repeatable).",
        )
        add("--gzip", action="store_true", help="Compress every file (.gz), or the whole archive.")

    def handle(self, *args, out, archive, uri, db, collections, gzip, verbosity, **options):
        # The archive itself goes to standard output: every message goes to standard error then.
        human = self.stderr if archive == "-" else self.stdout
        export = export_run(
            out=out,
            archive=archive,
            uri=uri,
            db_name=db,
            collections=collections,
            compress=gzip,
            progress=Progress.for_command(human, verbosity),
            audit=Audit("export_local", warn=self.stderr.write),
            announce=human.write if verbosity >= 1 else lambda line: None,
            stdout=self.stdout._out,
            max_ops_per_second=options["max_ops_per_second"],
        )
        if verbosity >= 2:
            for line in format_export_collections(export):
                human.write(line)
        for warning in export.warnings:
            self.stderr.write(f"warning: {warning}")
        if verbosity >= 1:
            human.write(format_export_summary(export))
