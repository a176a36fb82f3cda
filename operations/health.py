"""Database health: the probes behind the health endpoints, the admin page and ``healthcheck``.

- :func:`database_ready`: one ``ping``, bounded by HEALTH_TIMEOUT_MS (``/api/health/ready/``).
- :func:`health_report`: the detail an operator reads (``/api/health/``, ``/admin/health/``):
  round trip, version, storage and connections against the M0 limits, and this process's pool
  and command statistics (``studymaster.observability``).
- :func:`healthcheck` and :func:`format_healthcheck`: ``manage.py healthcheck``.

No result carries an error's own text: failures are named by their kind
(:func:`studymaster.errors.classify`) and the full message goes to the log.
"""

from __future__ import annotations

import logging
import time

import pymongo
from django.conf import settings
from django.db import DatabaseError, connection
from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

from studymaster.commands import client_for
from studymaster.errors import classify, command_error
from studymaster.mongo import redact
from studymaster.observability import command_stats, pool_stats
from studymaster.retry import retry_idempotent

logger = logging.getLogger("studymaster.health")

M0_STORAGE_QUOTA_BYTES = 512 * 1024 * 1024
M0_CONNECTION_LIMIT = 500
M0_OPERATIONS_PER_SECOND = 100
# Above these shares of an M0 limit the status turns "degraded".
WARN_SHARE = {"storage": 0.9, "connections": 0.8, "operations": 0.8}


def database_ping(client: MongoClient, db_name: str) -> dict:
    """Ping ``db_name`` and describe the server; PyMongo errors propagate to the caller."""
    started = time.perf_counter()
    client[db_name].command("ping")
    latency_ms = (time.perf_counter() - started) * 1000
    build = client[db_name].command("buildInfo")
    return {"status": "ok", "latency_ms": round(latency_ms, 2), "server_version": build.get("version", "")}


def database_detail(client: MongoClient, db_name: str) -> dict:
    """Round trip, version, storage and connections of ``db_name``'s server.

    Three commands when the user may run ``serverStatus`` (ping, serverStatus, dbStats),
    four when not (buildInfo replaces it for the version). PyMongo errors of the ping
    propagate; a refused ``serverStatus`` or ``dbStats`` is reported as unknown.
    """
    database = client[db_name]
    started = time.perf_counter()
    database.command("ping")
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    connections: dict = {"limit": M0_CONNECTION_LIMIT}
    try:
        status = client.admin.command("serverStatus")
    except OperationFailure as exc:
        connections.update(known=False, reason=f"serverStatus refused ({classify(exc).kind})")
        version = database.command("buildInfo").get("version", "")
    else:
        version = status.get("version", "")
        current = (status.get("connections") or {}).get("current")
        connections.update(known=current is not None, current=current)
        if current is not None:
            connections["used_share"] = round(current / M0_CONNECTION_LIMIT, 4)
        else:
            connections["reason"] = "serverStatus does not report connections"
    return {
        "latency_ms": latency_ms,
        "server_version": version,
        "storage": _storage(database),
        "connections": connections,
    }


def _storage(database) -> dict:
    storage: dict = {"quota_bytes": M0_STORAGE_QUOTA_BYTES}
    try:
        stats = database.command("dbStats")
    except OperationFailure as exc:
        storage.update(known=False, reason=f"dbStats refused ({classify(exc).kind})")
        return storage
    if stats.get("atlasSize") is not None:
        used, source = int(stats["atlasSize"]), "atlasSize"
    else:
        # Atlas counts data and indexes against a shared tier's quota.
        used, source = int(stats.get("dataSize", 0)) + int(stats.get("indexSize", 0)), "dbStats"
    storage.update(
        known=True, used_bytes=used, used_share=round(used / M0_STORAGE_QUOTA_BYTES, 4), source=source
    )
    return storage


def _timeout_seconds() -> float:
    return settings.HEALTH_TIMEOUT_MS / 1000


def _django_client() -> tuple[MongoClient, str]:
    """The MongoClient behind Django's default database (connecting once per process)."""
    connection.ensure_connection()
    return connection.connection, connection.settings_dict["NAME"]


def _problem_kind(exc: BaseException) -> str:
    cause = exc.__cause__ if isinstance(exc, DatabaseError) and exc.__cause__ else exc
    problem = classify(cause)
    logger.warning("health: database %s: %s", problem.kind, problem.message)
    return problem.kind


@retry_idempotent(operation="health_ready", attempts=2)
def _ping() -> None:
    client, db_name = _django_client()
    client[db_name].command("ping")


def database_ready() -> bool:
    """Whether Django's database answers a ping within HEALTH_TIMEOUT_MS.

    One transient failure (a dropped connection, a failover) is retried within that time,
    so a blip does not take the instance out of rotation. A failure is logged by its kind.
    """
    try:
        with pymongo.timeout(_timeout_seconds()):
            _ping()
    except (PyMongoError, DatabaseError) as exc:
        _problem_kind(exc)
        return False
    return True


def health_report() -> tuple[dict, bool]:
    """The detail of ``/api/health/`` and whether the database answered."""
    report: dict = {"status": "ok"}
    reachable = True
    try:
        with pymongo.timeout(_timeout_seconds()):
            client, db_name = _django_client()
            report["database"] = {"reachable": True, **database_detail(client, db_name)}
    except (PyMongoError, DatabaseError) as exc:
        reachable = False
        report["status"] = "down"
        report["database"] = {"reachable": False, "problem": _problem_kind(exc)}
    operations = command_stats.operations_per_second()
    report["pool"] = pool_stats.snapshot()
    report["commands"] = command_stats.latencies()
    report["operations"] = {
        "per_second": operations,
        "budget_per_second": M0_OPERATIONS_PER_SECOND,
        "window_seconds": command_stats.window_seconds,
        "used_share": round(operations / M0_OPERATIONS_PER_SECOND, 4),
    }
    report["warnings"] = _warnings(report)
    if reachable and report["warnings"]:
        report["status"] = "degraded"
    return report, reachable


def _warnings(report: dict) -> list[str]:
    database = report["database"]
    shares = {
        "storage": database.get("storage", {}).get("used_share"),
        "connections": database.get("connections", {}).get("used_share"),
        "operations": report["operations"]["used_share"],
    }
    warnings = [
        f"{name} at {share:.0%} of the M0 limit"
        for name, share in shares.items()
        if share is not None and share >= WARN_SHARE[name]
    ]
    if report["pool"]["waiting"]:
        warnings.append(f"{report['pool']['waiting']} request(s) waiting for a database connection")
    return warnings


# -- manage.py healthcheck ---------------------------------------------------------------------
def healthcheck(uri: str, db_name: str, *, detail: bool = False, uri_name: str = "--uri") -> dict:
    """Ping ``db_name`` on ``uri`` (with ``detail``, also storage and connections).

    The result names the server by its redacted URI. Raises CommandError with exit code 2
    (classified, naming ``uri_name``, where the URI came from) when the URI is malformed, its
    name does not resolve or the server does not answer.
    """
    client = client_for(uri, name=uri_name)
    try:
        if detail:
            return {
                "uri": redact(uri),
                "database": db_name,
                "status": "ok",
                **database_detail(client, db_name),
            }
        return {"uri": redact(uri), "database": db_name, **database_ping(client, db_name)}
    except PyMongoError as exc:
        raise command_error(exc, uri_name=uri_name) from None
    finally:
        client.close()


def format_healthcheck(result: dict, *, detail: bool = False) -> str:
    """The lines ``healthcheck`` prints for a :func:`healthcheck` result."""
    lines = [
        f"OK {result['uri']} db={result['database']} version={result['server_version']} "
        f"latency={result['latency_ms']}ms"
    ]
    if detail:
        lines.append(f"storage: {_describe(result['storage'], 'used_bytes', 'quota_bytes', mib=True)}")
        lines.append(f"connections: {_describe(result['connections'], 'current', 'limit')}")
    return "\n".join(lines)


def _describe(part: dict, used_key: str, limit_key: str, *, mib: bool = False) -> str:
    """'12.3 MB of 512 MB (2%)', or why it is not known."""
    if not part.get("known"):
        return f"unknown: {part.get('reason', 'not reported')}"
    used, limit = part[used_key], part[limit_key]
    if mib:
        return f"{used / 2**20:.1f} MB of {limit / 2**20:.0f} MB ({used / limit:.0%})"
    return f"{used} of {limit} ({used / limit:.0%})"
