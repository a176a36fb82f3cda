"""Production: SECRET_KEY and MONGODB_URI are required; HTTPS and secure cookies throughout."""

import environ
from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import configure, parse_uri, read_bool, read_positive_int

configure(
    globals(),
    debug=False,
    secret_key=environ.Env.NOTSET,
    mongodb_uri=environ.Env.NOTSET,
    allowed_hosts=environ.Env.NOTSET,
)

if DEBUG:  # noqa: F405
    raise ImproperlyConfigured("DJANGO_DEBUG must be off in production. Unset it or set it to 0.")
if len(SECRET_KEY) < 50 or SECRET_KEY.startswith(("dev-", "test-")):  # noqa: F405
    raise ImproperlyConfigured(
        "SECRET_KEY is too short or a development key. Generate one with: "
        "python -c 'import secrets; print(secrets.token_urlsafe(64))'"
    )
_parsed = parse_uri(MONGODB_URI)  # noqa: F405
if not (_parsed.uses_tls or _parsed.is_loopback):
    raise ImproperlyConfigured(
        "MONGODB_URI reaches a remote server without TLS. Use the mongodb+srv:// string "
        "Atlas gives you, or add tls=true."
    )

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = read_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = read_positive_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
