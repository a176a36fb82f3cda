"""The Content-Security-Policy every response carries.

Everything the site loads is its own: the admin's and Swagger UI's scripts and styles are static
files (drf-spectacular-sidecar, no CDN), and Swagger UI's set-up script is served from
``/api/docs/?script=`` rather than inline. So scripts come from this origin only and no inline
script runs: an injected ``<script>`` or ``onerror=`` does nothing. Swagger UI draws its icons
from ``data:`` images and reads the schema with ``fetch`` from this origin. Nobody may frame the
pages (as X-Frame-Options already says) or post their forms elsewhere. Tested in Chromium:
accounts/tests/test_admin_browser.py.
"""

from __future__ import annotations

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """Adds :data:`CONTENT_SECURITY_POLICY` to every response that does not set its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
