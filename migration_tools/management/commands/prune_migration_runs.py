import datetime

from django.core.management.base import CommandError
from django.utils import timezone
from pymongo.errors import PyMongoError

from migration_tools.models import MigrationRun
from migration_tools.runs import MigrationCommand
from studymaster.errors import command_error


class Command(MigrationCommand):
    help = "Delete finished migration audit records (MigrationRun) older than --days. Keeps running ones."

    def add_arguments(self, parser):
        parser.add_argument(
            "--days", type=int, default=180, help="Keep records younger than this (default 180)."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(self, *args, days: int, dry_run: bool, **options):
        if days < 1:
            raise CommandError("--days must be at least 1.", returncode=1)
        cutoff = timezone.now() - datetime.timedelta(days=days)
        old_runs = MigrationRun.objects.filter(started_at__lt=cutoff).exclude(
            status=MigrationRun.Status.RUNNING
        )
        try:
            if dry_run:
                self.stdout.write(
                    f"{old_runs.count()} audit records older than {days} days would be deleted."
                )
                return
            deleted, _ = old_runs.delete()
        except PyMongoError as exc:
            raise command_error(exc) from None
        self.stdout.write(f"Deleted {deleted} audit records older than {days} days.")
