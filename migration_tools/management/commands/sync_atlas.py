from django.conf import settings

from migration_tools import sync
from migration_tools.runs import Audit, MigrationCommand


class Command(MigrationCommand):
    help = (
        "Copy the source database to the target while it stays live, then apply its changes until "
        "Ctrl-C or SIGTERM (exit 0, state saved: run it again to resume); --cutover switches over with a "
        "freeze of seconds. Exit 1 refused or NO-GO, 2 cannot run, 130 interrupted during the copy."
    )
    interrupted_message = (
        "interrupted; the state is saved on the target: run the same command again to resume"
    )

    def add_arguments(self, parser):
        add = parser.add_argument
        add("--source-uri", help="Source server (default LOCAL_MONGODB_URI; no other fallback).")
        add("--target-uri", help="Target server (default ATLAS_MONGODB_URI; no other fallback).")
        add("--db", help="Source database (default MONGODB_DB_NAME).")
        add("--target-db", help="Target database (default: the same as --db).")
        add("--restart", action="store_true", help="Forget the saved state; copy afresh.")
        add("--yes", action="store_true", help="Confirm --restart.")
        add(
            "--max-ops-per-second",
            type=float,
            default=80.0,
            help="Database operations a second on the target (default 80, under M0's 100; 0: no limit).",
        )
        add(
            "--quota-mb",
            type=float,
            default=512.0,
            help="Refuse a source whose data and indexes exceed this (default 512, M0's; 0: off).",
        )
        add(
            "--cutover",
            action="store_true",
            help="Catch up, freeze the source (maintenance hard), drain, verify: GO (exit 0) or NO-GO (exit 1).",
        )
        add(
            "--catch-up-timeout",
            type=float,
            default=300.0,
            help="--cutover: seconds to reach a lag under 1s before giving up, nothing frozen (default 300).",
        )
        add("--json", dest="json_path", help="Write the final figures as JSON to this file.")

    def handle(self, *args, verbosity, json_path, **options):
        sync.sync_run(
            sync.options_for_command(options, settings),
            audit=Audit("sync_atlas", warn=self.stderr.write),
            status=sync.StatusPrinter(self.stdout, verbosity=verbosity),
            json_path=json_path,
        )
