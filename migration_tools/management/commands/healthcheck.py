import json

from django.conf import settings
from django.core.management.base import BaseCommand
from pymongo.errors import PyMongoError

from migration_tools.cli import client_for
from migration_tools.health import database_detail, database_ping
from studymaster.errors import command_error
from studymaster.mongo import redact


class Command(BaseCommand):
    help = (
        "Ping the application's database (MONGODB_URI, or --uri). Exit 0 healthy, 2 unreachable. "
        "--detail adds storage against the M0 quota and connections against the M0 limit."
    )

    def add_arguments(self, parser):
        parser.add_argument("--uri", help="Check this server instead of MONGODB_URI.")
        parser.add_argument("--db", help="Database to ping (default MONGODB_DB_NAME).")
        parser.add_argument("--json", dest="as_json", action="store_true", help="Print the result as JSON.")
        parser.add_argument(
            "--detail", action="store_true", help="Also report storage and connections (as /api/health/)."
        )

    def handle(self, *args, uri, db, as_json: bool, detail: bool, **options):
        uri = uri or settings.MONGODB_URI
        db = db or settings.MONGODB_DB_NAME
        client = client_for(uri, name="--uri")
        try:
            if detail:
                result = {"uri": redact(uri), "database": db, "status": "ok", **database_detail(client, db)}
            else:
                result = {"uri": redact(uri), "database": db, **database_ping(client, db)}
        except PyMongoError as exc:
            raise command_error(exc) from None
        finally:
            client.close()
        if as_json:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(
            f"OK {result['uri']} db={db} version={result['server_version']} latency={result['latency_ms']}ms"
        )
        if detail:
            self.stdout.write(
                f"storage: {_describe(result['storage'], 'used_bytes', 'quota_bytes', mib=True)}"
            )
            self.stdout.write(f"connections: {_describe(result['connections'], 'current', 'limit')}")


def _describe(part: dict, used_key: str, limit_key: str, *, mib: bool = False) -> str:
    """'12.3 MB of 512 MB (2%)', or why it is not known."""
    if not part.get("known"):
        return f"unknown: {part.get('reason', 'not reported')}"
    used, limit = part[used_key], part[limit_key]
    if mib:
        return f"{used / 2**20:.1f} MB of {limit / 2**20:.0f} MB ({used / limit:.0%})"
    return f"{used} of {limit} ({used / limit:.0%})"
