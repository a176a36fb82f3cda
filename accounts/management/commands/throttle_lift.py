from django.core.management.base import BaseCommand, CommandError
from pymongo.errors import PyMongoError

from accounts.throttles import throttle_lift
from studymaster.errors import command_error


class Command(BaseCommand):
    help = (
        "Lift the login, password, profile and study session throttles of a username, or the "
        "login and registration throttles of a client address, before their windows end."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--username", help="A username as typed at login (any case); also lifts its account's counts."
        )
        parser.add_argument("--address", help="A client IP address, as the throttles see it.")

    def handle(self, *args, username, address, **options):
        try:
            lifted = throttle_lift(username=username, address=address)
        except ValueError as exc:
            raise CommandError(str(exc), returncode=1) from None
        except PyMongoError as exc:
            raise command_error(exc) from None
        named = " and ".join(
            part for part in (username and f"username {username!r}", address and f"address {address}") if part
        )
        if lifted:
            self.stdout.write(f"Lifted {lifted} throttle counter{'s' if lifted != 1 else ''} of {named}.")
        else:
            self.stdout.write(f"Nothing to lift: no throttle counts for {named}.")
