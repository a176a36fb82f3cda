"""Database health: liveness, readiness and the detail an operator reads.

- ``/api/health/live/``: no database call; 200 while the process runs.
- ``/api/health/ready/``: one ``ping``, bounded by HEALTH_TIMEOUT_MS; 503 when it fails.
- ``/api/health/``: the detail (:func:`health_report`), for staff (JWT or admin session) or a
  monitor presenting ``Authorization: Bearer <HEALTH_TOKEN>``.
- ``/admin/health/``: the same detail as a page, with a latency chart.

No answer carries an error's own text: failures are named by their kind
(:func:`studymaster.errors.classify`) and the full message goes to the log.
"""

from __future__ import annotations

import logging
import time

import pymongo
from django.conf import settings
from django.contrib import admin
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication

from studymaster.errors import RETRY_AFTER_SECONDS, classify
from studymaster.observability import bearer_matches, command_stats, pool_stats
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


def _unavailable(body: dict) -> JsonResponse:
    response = JsonResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@never_cache
def live(request):
    """200 while the process runs; touches nothing else."""
    return JsonResponse({"status": "ok"})


@retry_idempotent(operation="health_ready", attempts=2)
def _ping() -> None:
    client, db_name = _django_client()
    client[db_name].command("ping")


@never_cache
def ready(request):
    """200 when the database answers a ping within HEALTH_TIMEOUT_MS, else 503.

    One transient failure (a dropped connection, a failover) is retried within that
    time, so a blip does not take the instance out of rotation.
    """
    try:
        with pymongo.timeout(_timeout_seconds()):
            _ping()
    except (PyMongoError, DatabaseError) as exc:
        _problem_kind(exc)
        return _unavailable({"code": "database_unavailable", "message": "The database is not reachable."})
    return JsonResponse({"status": "ok"})


def _is_staff(request) -> bool | None:
    """True/False for an identified caller, None for an anonymous one."""
    if bearer_matches(request, settings.HEALTH_TOKEN):
        return True
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user.is_staff
    try:
        authenticated = JWTAuthentication().authenticate(request)
    except AuthenticationFailed:
        return None
    return authenticated[0].is_staff if authenticated else None


@never_cache
def detail(request):
    """The health detail as JSON: 200 when the database answers, 503 when it does not."""
    allowed = _is_staff(request)
    if allowed is None:
        response = JsonResponse(
            {"code": "not_authenticated", "message": "A staff token or the health token is required."},
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="health"'
        return response
    if not allowed:
        return JsonResponse({"code": "permission_denied", "message": "Staff only."}, status=403)
    report, reachable = health_report()
    return JsonResponse(report) if reachable else _unavailable(report)


CHART_MAX_COMMANDS = 12


def latency_chart(commands: dict, *, width: int = 560, bar_height: int = 14) -> dict:
    """Geometry of a horizontal bar chart of p50 and p95 per command, for an inline SVG.

    The CHART_MAX_COMMANDS slowest commands by p95, slowest first, on one linear scale.
    """
    label_width, gap = 130, 10
    scale_max = max((stats["p95_ms"] for stats in commands.values()), default=0) or 1.0
    plot_width = width - label_width - 70
    rows = []
    slowest = sorted(commands.items(), key=lambda item: -item[1]["p95_ms"])[:CHART_MAX_COMMANDS]
    for index, (name, stats) in enumerate(slowest):
        top = index * (2 * bar_height + gap)
        rows.append(
            {
                "name": name,
                "count": stats["count"],
                "p50_ms": stats["p50_ms"],
                "p95_ms": stats["p95_ms"],
                "y": top,
                "y2": top + bar_height,
                "text_y": top + bar_height - 3,
                "text2_y": top + 2 * bar_height - 3,
                "p50_width": max(1, round(stats["p50_ms"] / scale_max * plot_width)),
                "p95_width": max(1, round(stats["p95_ms"] / scale_max * plot_width)),
            }
        )
    return {
        "rows": rows,
        "width": width,
        "height": max(1, len(rows) * (2 * bar_height + gap)),
        "bar_height": bar_height,
        "label_width": label_width,
        "value_x": label_width + plot_width + 6,
    }


def _gauges(report: dict) -> list[dict]:
    """Used-share bars for the admin page: storage, connections, operations/s."""
    database = report["database"]
    storage = database.get("storage", {})
    connections = database.get("connections", {})
    operations = report["operations"]
    mib = 1024 * 1024
    items = [
        (
            "Storage",
            storage.get("used_share"),
            f"{storage['used_bytes'] / mib:.1f} MB of {storage['quota_bytes'] // mib} MB"
            if storage.get("known")
            else storage.get("reason", "unknown"),
        ),
        (
            "Connections",
            connections.get("used_share"),
            f"{connections['current']} of {connections['limit']}"
            if connections.get("known")
            else connections.get("reason", "unknown"),
        ),
        (
            "Operations/s",
            operations["used_share"],
            f"{operations['per_second']} of ~{operations['budget_per_second']}",
        ),
    ]
    gauges = []
    for label, share, text in items:
        percent = None if share is None else min(100, round(share * 100))
        level = "unknown" if share is None else "bad" if share >= 0.9 else "warn" if share >= 0.7 else "ok"
        gauges.append({"label": label, "percent": percent, "text": text, "level": level})
    return gauges


@never_cache
def admin_page(request):
    """The health detail for staff, in the admin, readable at a glance."""
    report, reachable = health_report()
    context = {
        **admin.site.each_context(request),
        "title": "Database health",
        "report": report,
        "reachable": reachable,
        "gauges": _gauges(report),
        "chart": latency_chart(report["commands"]),
    }
    return TemplateResponse(request, "migration_tools/health_admin.html", context)


admin_health_view = admin.site.admin_view(admin_page)

# Link the page from the admin index, unless something else already chose the index template.
if admin.site.index_template is None:
    admin.site.index_template = "migration_tools/admin_index.html"
