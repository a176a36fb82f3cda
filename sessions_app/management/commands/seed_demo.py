from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from sessions_app.demo_data import seed_demo


class Command(BaseCommand):
    help = "Load the demo data into an empty database (used by `make demo`)."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=36, help="How many learners to create (default 36).")

    def handle(self, *args, users, **options):
        if users < 1:
            raise CommandError("--users must be at least 1.")
        if User.objects.exists():
            raise CommandError("The database already holds users; seed_demo only fills an empty database.")
        counts = seed_demo(users=users)
        self.stdout.write(", ".join(f"{value} {key}" for key, value in counts.items()))
