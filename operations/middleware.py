"""Maintenance mode (studymaster.maintenance): what each level lets through.

- ``on``: every change a user makes answers 503 (API writes as JSON, admin writes as a page),
  except logging in, refreshing a token and logging out, so that a freeze of minutes logs
  nobody out; reads keep working.
- ``hard``: those answer 503 too; nothing at all is written. Reads keep working.

A request that changes nothing (GET, HEAD, OPTIONS) always passes. The answer carries
``Retry-After``.
"""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

from studymaster.maintenance import current_state

SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
# The views that open or close a session, by URL name (accounts.urls and the admin's): allowed
# while the level is "on".
SESSION_VIEWS = frozenset({"auth-token", "auth-token-refresh", "auth-logout", "admin:login", "admin:logout"})
RETRY_AFTER_SECONDS = {"on": 300, "hard": 10}
MESSAGE = (
    "StudyMaster is moving to a new database. Changes are paused for a few minutes; reading works. "
    "Please try again shortly."
)


class MaintenanceModeMiddleware:
    """Answer a write with 503 while maintenance is on (see the module docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method in SAFE_METHODS:
            return None
        state = current_state()
        if not state.active:
            return None
        if state.level == "on" and request.resolver_match.view_name in SESSION_VIEWS:
            return None
        return maintenance_response(request, state.level)


def maintenance_response(request, level: str) -> HttpResponse:
    """The 503: the API's error shape under /api/, a plain page elsewhere (the admin)."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS[level])}
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "maintenance", "message": MESSAGE}, status=503, headers=headers)
    page = render_to_string("operations/maintenance.html", {"message": MESSAGE, "level": level})
    return HttpResponse(page, status=503, headers=headers)
