"""What operators and their monitors call: health probes, the admin health page, ``/metrics``.

- ``/api/health/live/``: no database call; 200 while the process runs.
- ``/api/health/ready/``: one ``ping``, bounded by HEALTH_TIMEOUT_MS; 503 when it fails.
- ``/api/health/``: the detail (:func:`operations.health.health_report`), for staff (JWT or
  admin session) or a monitor presenting ``Authorization: Bearer <HEALTH_TOKEN>``.
- ``/admin/health/``: the same detail as a page, with a latency chart.
- ``/metrics``: Prometheus text for a caller presenting ``Bearer <METRICS_TOKEN>``. With
  several gunicorn workers, set ``PROMETHEUS_MULTIPROC_DIR`` (docs/operations.md): each worker
  writes its values there and any worker's ``/metrics`` aggregates them.
"""

from __future__ import annotations

import hmac
import os

from django.conf import settings
from django.contrib import admin
from django.http import Http404, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry
from prometheus_client import generate_latest as prometheus_text
from prometheus_client.multiprocess import MultiProcessCollector
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication

from operations.charts import latency_chart, usage_gauges
from operations.health import database_ready, health_report
from studymaster.errors import RETRY_AFTER_SECONDS


def _bearer_token(request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def bearer_matches(request, expected: str) -> bool:
    """Whether the request presents ``expected`` as its bearer token (constant-time compare)."""
    presented = _bearer_token(request)
    return bool(expected and presented) and hmac.compare_digest(presented.encode(), expected.encode())


def _unavailable(body: dict) -> JsonResponse:
    response = JsonResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@never_cache
def live(request):
    """200 while the process runs; touches nothing else."""
    return JsonResponse({"status": "ok"})


@never_cache
def ready(request):
    """200 when the database answers a ping within HEALTH_TIMEOUT_MS, else 503."""
    if not database_ready():
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


@never_cache
def admin_page(request):
    """The health detail for staff, in the admin, readable at a glance."""
    report, reachable = health_report()
    context = {
        **admin.site.each_context(request),
        "title": "Database health",
        "report": report,
        "reachable": reachable,
        "gauges": usage_gauges(report),
        "chart": latency_chart(report["commands"]),
    }
    return TemplateResponse(request, "operations/health_admin.html", context)


admin_health_view = admin.site.admin_view(admin_page)


def metrics_view(request):
    """Prometheus text for callers presenting METRICS_TOKEN; 404 while no token is configured."""
    expected = settings.METRICS_TOKEN
    if not expected:
        raise Http404("metrics are disabled")
    if not _bearer_token(request):
        response = HttpResponse("metrics need a bearer token\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if not bearer_matches(request, expected):
        return HttpResponse("wrong metrics token\n", status=403, content_type="text/plain")
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return HttpResponse(prometheus_text(registry), content_type=CONTENT_TYPE_LATEST)
