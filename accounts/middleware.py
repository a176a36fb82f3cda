"""The admin's login, throttled like the API's (accounts.throttles, scope ``login``)."""

from __future__ import annotations

from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse

from accounts.throttles import client_address, login_keys, throttle_hit


def _admin_login_path() -> str | None:
    try:
        return reverse("admin:login")
    except NoReverseMatch:  # a URLconf without the admin (some tests use their own)
        return None


class AdminLoginThrottleMiddleware:
    """Counts every sign-in attempt at ``/admin/login/`` (each POST, right or wrong) by client
    address and by username, in the same counters as ``POST /api/auth/token/``. Over the rate:
    429 with ``Retry-After`` and a page that says when to try again; the password is not checked.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "POST" and request.path == _admin_login_path():
            keys = login_keys(address=client_address(request), username=request.POST.get("username"))
            retry_after = throttle_hit("login", keys)
            if retry_after is not None:
                return self._refused(request, retry_after)
        return self.get_response(request)

    def _refused(self, request, retry_after: int):
        context = {
            **admin.site.each_context(request),
            "title": "Too many sign-in attempts",
            "retry_after": retry_after,
        }
        response = TemplateResponse(request, "accounts/admin_login_throttled.html", context, status=429)
        response["Retry-After"] = str(retry_after)
        return response.render()
