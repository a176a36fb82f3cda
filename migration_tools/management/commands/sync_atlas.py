from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from migration_tools import sync
from migration_tools.cli import Audit


class Command(BaseCommand):
    requires_system_checks = []  # a migration run needs no URLconf or app check
    help = (
        "Copy the source database to the target while it stays live, then apply its changes until "
        "Ctrl-C or SIGTERM (exit 0, state saved: run it again to resume). Exit 1 refused, 2 cannot run, "
        "130 interrupted during the copy."
    )

    def add_arguments(self, parser):
        parser.add_argument("--source-uri", help="Source server (default LOCAL_MONGODB_URI).")
        parser.add_argument(
            "--target-uri", help="Target server (default ATLAS_MONGODB_URI; no other fallback)."
        )
        parser.add_argument("--db", help="Source database (default MONGODB_DB_NAME).")
        parser.add_argument("--target-db", help="Target database (default: the same as --db).")
        parser.add_argument("--restart", action="store_true", help="Forget the saved state; copy afresh.")
        parser.add_argument("--yes", action="store_true", help="Confirm --restart.")
        parser.add_argument(
            "--max-ops-per-second",
            type=float,
            default=80.0,
            help="Database operations a second on the target (default 80, under M0's 100; 0: no limit).",
        )
        parser.add_argument(
            "--quota-mb",
            type=float,
            default=512.0,
            help="Refuse a source whose data and indexes exceed this (default 512, M0's; 0: off).",
        )
        parser.add_argument("--json", dest="json_path", help="Write the final figures as JSON to this file.")

    def handle(self, *args, verbosity, json_path, **options):
        status = sync.StatusPrinter(self.stdout, verbosity=verbosity)
        try:
            chosen = sync.options_for_command(options, settings)
        except sync.SyncError as exc:
            raise CommandError(str(exc), returncode=exc.exit_code) from None
        run = sync.LiveSync(chosen, say=status.say, status=status)
        audit = Audit("sync_atlas", chosen.source_uri, chosen.target_uri, chosen.target_db, self.stderr.write)
        with audit.running(), sync.stop_on_signals() as run.stop:
            status.say(run.figures.opening_line())
            try:
                run.run()
            except sync.SyncError as exc:
                raise CommandError(str(exc), returncode=exc.exit_code) from None
            finally:
                status.clear()
                audit.counts = run.figures.audit_counts()
                sync.write_json(run.figures, json_path)
            status.say(sync.format_figures(run.figures))
