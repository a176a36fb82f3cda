from django.core.management.base import BaseCommand
from pymongo.errors import PyMongoError

from sessions_app.services import study_totals_recompute
from studymaster.commands import refuse
from studymaster.errors import command_error


class Command(BaseCommand):
    help = (
        "Recompute every maintained total (study totals, week points, the users' progress) from the "
        "study sessions and the ledger. Exit 0: all equal; 1: some differ (--fix rebuilds them); 2: "
        "the database cannot be reached."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--fix", action="store_true", help="Rebuild the totals of every user that differs."
        )

    def handle(self, *args, fix, verbosity, **options):
        def progress(users: int) -> None:
            if verbosity >= 1:
                self.stderr.write(f"recompute_totals: {users:,} users checked...")

        try:
            check = study_totals_recompute(fix=fix, progress=progress)
        except PyMongoError as exc:
            raise command_error(exc) from None
        if check.off:
            self.stdout.write(f"Totals that differ from the history: {check.summary()}.")
        else:
            self.stdout.write(f"Checked {check.users} users: every total equals their sessions and ledger.")
        if check.repaired:
            self.stdout.write(
                f"Rebuilt the totals of {check.repaired} user(s) from their sessions and ledger."
            )
        elif check.off:
            raise refuse(
                f"{len(check.off)} user(s) have totals that differ from their sessions and ledger. "
                "Run manage.py recompute_totals --fix to rebuild them."
            )
