import getpass
import socket

from django.conf import settings

from studymaster.commands import OperatorCommand
from studymaster.db import application_database
from studymaster.maintenance import (
    LEVELS,
    PROPAGATION_SECONDS,
    effective,
    forget_cached_state,
    maintenance_get,
    maintenance_set,
)
from studymaster.mongo import redact

WHAT_IT_DOES = {
    "off": "every request goes through",
    "on": "API and admin writes answer 503; logging in, token refresh and logout go through; reads work",
    "hard": "every write answers 503, logging in, token refresh and logout included; reads work",
}


class Command(OperatorCommand):
    help = (
        "Switch maintenance mode in the application's database (every process follows within "
        f"{PROPAGATION_SECONDS:g} s), or show it. on: changes are frozen, sessions still open and close; "
        "hard: nothing is written. Exit 0 done, 2 cannot run."
    )

    def add_arguments(self, parser):
        parser.add_argument("level", choices=[*LEVELS, "status"], help="on, hard, off, or status to show it.")
        parser.add_argument("--by", help="Who sets it (default: user@host of this shell).")

    def handle(self, *args, level: str, by: str | None, **options):
        db = application_database()
        place = f"database {settings.MONGODB_DB_NAME} on {redact(settings.MONGODB_URI)} (MONGODB_URI)"
        if level == "status":
            state = effective(maintenance_get(db), forced=settings.MAINTENANCE_MODE)
            self.stdout.write(f"maintenance: {state.describe()}, in {place}: {WHAT_IT_DOES[state.level]}.")
            return
        state = maintenance_set(db, level=level, set_by=by or f"{getpass.getuser()}@{socket.gethostname()}")
        forget_cached_state()
        self.stdout.write(
            f"maintenance: {state.describe()}, in {place}. Every process follows within "
            f"{PROPAGATION_SECONDS:g} s: {WHAT_IT_DOES[level]}."
        )
        if level == "off" and settings.MAINTENANCE_MODE:
            self.stderr.write(
                "warning: MAINTENANCE_MODE=1 in this environment still forces maintenance on in every "
                "process started with it; unset it there and restart them."
            )
