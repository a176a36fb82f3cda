"""Maintenance mode for the cut-over: API writes get a JSON 503, reads go on working."""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
RETRY_AFTER_SECONDS = 300


class MaintenanceModeMiddleware:
    """With ``MAINTENANCE_MODE=1``, refuse POST/PUT/PATCH/DELETE under /api/ with 503 and Retry-After."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            getattr(settings, "MAINTENANCE_MODE", False)
            and request.method in WRITE_METHODS
            and request.path.startswith("/api/")
        ):
            body = {
                "code": "maintenance",
                "message": "StudyMaster is moving to a new database. Changes are paused for a few minutes; "
                "reading works. Please try again shortly.",
            }
            return JsonResponse(body, status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        return self.get_response(request)
