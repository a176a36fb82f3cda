import json

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from pymongo.errors import PyMongoError

from migration_tools.health import database_ping
from studymaster.errors import command_error
from studymaster.mongo import make_client, redact


class Command(BaseCommand):
    help = "Ping the application's database (MONGODB_URI, or --uri). Exit 0 healthy, 2 unreachable."

    def add_arguments(self, parser):
        parser.add_argument("--uri", help="Check this server instead of MONGODB_URI.")
        parser.add_argument("--db", help="Database to ping (default MONGODB_DB_NAME).")
        parser.add_argument("--json", dest="as_json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, uri, db, as_json: bool, **options):
        uri = uri or settings.MONGODB_URI
        db = db or settings.MONGODB_DB_NAME
        try:
            client = make_client(uri, name="--uri")
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc), returncode=2) from None
        try:
            result = {"uri": redact(uri), "database": db, **database_ping(client, db)}
        except PyMongoError as exc:
            raise command_error(exc) from None
        finally:
            client.close()
        if as_json:
            self.stdout.write(json.dumps(result))
        else:
            self.stdout.write(
                f"OK {result['uri']} db={db} version={result['server_version']} "
                f"latency={result['latency_ms']}ms"
            )
