import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from migration_tools.bsonfiles import DamagedDumpError
from migration_tools.cli import Audit, cannot_run, client_for, refuse
from migration_tools.dump import DomainTally, dump_database
from migration_tools.progress import Progress, human_bytes
from studymaster.mongo import redact


class Command(BaseCommand):
    # The checks load every URLconf and app; a migration run needs none of it (~0.2 s a run).
    requires_system_checks = []
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
            client = client_for(uri, name=uri_name)
            try:
                if not client[db_name].list_collection_names():
                    raise refuse(f"Database {db_name!r} on {redact(uri)} has no collections; check --db.")
                started = time.monotonic()
                tally = DomainTally()
                try:
                    manifest = dump_database(
                        client,
                        db_name,
                        Path(out),
                        source_uri=uri,
                        collections=collections,
                        compress=gzip,
                        progress=Progress.for_command(self.stdout, verbosity),
                        tally=tally,
                    )
                except (FileExistsError, ValueError) as exc:
                    raise refuse(str(exc)) from None
                except DamagedDumpError as exc:
                    raise cannot_run(f"The dump did not read back as written: {exc}") from None
                seconds = time.monotonic() - started
                warnings = tally.warnings()
            finally:
                client.close()
            stats = manifest["collections"]
            documents = sum(item["documents"] for item in stats.values())
            size = sum(item["bytes"] for item in stats.values())
            audit.counts = {name: item["documents"] for name, item in stats.items()}
            audit.checksums = {name: item["content_hash"] for name, item in stats.items()}
            if verbosity >= 2:
                for name, item in stats.items():
                    self.stdout.write(
                        f"  {name:<40} {item['documents']:>9} documents  {human_bytes(item['bytes'])}"
                    )
            for warning in warnings:
                self.stderr.write(f"warning: {warning}")
            if verbosity >= 1:
                self.stdout.write(
                    f"Exported {documents} documents ({human_bytes(size)}) in {len(stats)} collections of "
                    f"{db_name} from {redact(uri)} to {out} in {seconds:.1f}s "
                    f"({documents / max(seconds, 1e-6):.0f} documents/s). Re-read: every checksum matches "
                    f"{Path(out) / 'manifest.json'}. Not exported: {', '.join(manifest['excluded'])} (audit log)."
                )
