from django.core.management.base import BaseCommand

from accounts.models import User
from sessions_app.services import study_streak_refresh


class Command(BaseCommand):
    help = (
        "Maintenance: recompute stored streaks and last study dates from the study sessions. "
        "Not needed for correctness: the API derives the current streak as of now."
    )

    def handle(self, *args, **options):
        changed = 0
        for user in User.objects.filter(current_streak__gt=0).iterator():
            before = user.current_streak
            current, _ = study_streak_refresh(user=user)
            changed += current != before
        self.stdout.write(f"{changed} streaks ended")
