import json

from django.conf import settings

from operations.health import format_healthcheck, healthcheck
from studymaster.commands import OperatorCommand


class Command(OperatorCommand):
    help = (
        "Ping the application's database (MONGODB_URI, or --uri). Exit 0 healthy, 2 unreachable or "
        "misconfigured. --detail adds storage against the M0 quota and connections against the M0 limit."
    )

    def add_arguments(self, parser):
        parser.add_argument("--uri", help="Check this server instead of MONGODB_URI.")
        parser.add_argument("--db", help="Database to ping (default MONGODB_DB_NAME).")
        parser.add_argument("--json", dest="as_json", action="store_true", help="Print the result as JSON.")
        parser.add_argument(
            "--detail", action="store_true", help="Also report storage and connections (as /api/health/)."
        )

    def handle(self, *args, uri, db, as_json: bool, detail: bool, **options):
        result = healthcheck(
            uri or settings.MONGODB_URI,
            db or settings.MONGODB_DB_NAME,
            detail=detail,
            uri_name="--uri" if uri else "MONGODB_URI",
        )
        self.stdout.write(json.dumps(result) if as_json else format_healthcheck(result, detail=detail))
