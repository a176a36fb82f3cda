import datetime

from django.utils import timezone

from migration_tools.models import MigrationRun
from migration_tools.runs import MigrationCommand, application_audit_location, refuse


class Command(MigrationCommand):
    help = (
        "Delete finished migration audit records (MigrationRun) older than --days from the application's "
        "database. Keeps running ones. Exit 0 done, 1 refused, 2 cannot run."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days", type=int, default=180, help="Keep records younger than this (default 180)."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(self, *args, days: int, dry_run: bool, verbosity: int, **options):
        if days < 1:
            raise refuse("--days must be at least 1.")
        if verbosity >= 1:
            self.stdout.write(f"prune_migration_runs: reads and writes {application_audit_location()}.")
        cutoff = timezone.now() - datetime.timedelta(days=days)
        old_runs = MigrationRun.objects.filter(started_at__lt=cutoff).exclude(
            status=MigrationRun.Status.RUNNING
        )
        if dry_run:
            self.stdout.write(f"{old_runs.count()} audit records older than {days} days would be deleted.")
            return
        deleted, _ = old_runs.delete()
        self.stdout.write(f"Deleted {deleted} audit records older than {days} days.")
