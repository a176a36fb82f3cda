import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from migration_tools.bsonfiles import DamagedDumpError
from migration_tools.cli import Audit, cannot_run, client_for, refuse
from migration_tools.dump import AUDIT_COLLECTION, load_dump
from migration_tools.progress import Progress
from migration_tools.verify import LiveSide, VerifyError, format_report, verify
from studymaster.mongo import redact


class Command(BaseCommand):
    # The checks load every URLconf and app; a migration run needs none of it (~0.2 s a run).
    requires_system_checks = []
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
        target_uri = target_uri or settings.ATLAS_MONGODB_URI
        if not target_uri:
            raise cannot_run("No target: set ATLAS_MONGODB_URI or pass --target-uri.")
        source_uri = source_uri or settings.LOCAL_MONGODB_URI
        audit = Audit(
            "verify_migration",
            source=dump or source_uri,
            target=target_uri,
            database=db or "",
            warn=self.stderr.write,
        )
        with audit.running():
            # The target first: when it cannot be reached, nothing else matters (exit 2).
            target_client = client_for(target_uri, name="--target-uri")
            clients = [target_client]
            try:
                if dump:
                    try:
                        source = load_dump(Path(dump))
                    except DamagedDumpError as exc:
                        raise refuse(f"Refused: {exc}") from None
                    source_db, source_label = db or source.db_name, str(dump)
                else:
                    source_db, source_label = db or settings.MONGODB_DB_NAME, redact(source_uri)
                    source_client = client_for(source_uri, name="--source-uri")
                    clients.append(source_client)
                    source = LiveSide(source_client[source_db], {AUDIT_COLLECTION})
                    if not source.names():
                        raise refuse(f"The source database {source_db!r} has no collections; check --db.")
                target_name = target_db or source_db
                audit.database = target_name
                try:
                    report = verify(
                        source,
                        target_client[target_name],
                        source_label=source_label,
                        target_label=redact(target_uri),
                        source_db=source_db,
                        progress=Progress.for_command(self.stdout, verbosity),
                    )
                except DamagedDumpError as exc:
                    raise refuse(f"Refused: {exc}") from None
                except VerifyError as exc:
                    raise cannot_run(str(exc)) from None
            finally:
                for client in clients:
                    client.close()
            audit.counts = {
                c.name: {
                    "source": c.source_documents,
                    "target": c.target_documents,
                    "missing": c.missing,
                    "extra": c.extra,
                    "different": c.different,
                    "expired": c.expired,
                }
                for c in report.collections
            }
            if json_path:
                Path(json_path).write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
            if verbosity >= 1:
                self.stdout.write(format_report(report))
            if not report.identical:
                raise refuse("verify_migration: the target differs from the source (see the report above).")
