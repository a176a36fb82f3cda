"""Settings shared by every stage. The environment is read here, once, through ``env``.

dev.py, test.py and prod.py set the defaults of their stage and then call
:func:`configure` with them; nothing else in the project reads ``os.environ``
for application settings. ``configure`` first reads ``.env`` at the project root, when there is
one, into the environment (variables already set win); the test stage never does, so a
developer's file cannot change what the suite tests.
"""

from datetime import timedelta
from pathlib import Path

import environ
from corsheaders.defaults import default_headers
from django.core.exceptions import ImproperlyConfigured

from studymaster.mongo import client_options, parse_uri  # noqa: F401 - prod.py uses parse_uri
from studymaster.observability import mongo_event_listeners
from studymaster.ratelimit import parse_rate

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# The file configure() reads: .env at the project root unless this names another; empty: none
# (the Makefile's targets and the test suite set it empty).
DOTENV_VARIABLE = "STUDYMASTER_ENV_FILE"


def read_dotenv() -> Path | None:
    """Load the ``.env`` file into the environment without overriding what is already set.

    Returns the file read, or None. A missing file is not an error: a deployment's variables come
    from its platform.
    """
    path = env.str(DOTENV_VARIABLE, default=str(BASE_DIR / ".env"))
    if not path or not Path(path).is_file():
        return None
    environ.Env.read_env(path, overwrite=False)
    return Path(path)


def _read(name, cast, default):
    """Read one variable; a malformed value stops startup with a message naming it."""
    try:
        if default is environ.Env.NOTSET:
            return cast(name)
        return cast(name, default=default)
    except ImproperlyConfigured:
        raise ImproperlyConfigured(
            f"{name} is not set. See .env.example for its meaning and format."
        ) from None
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            f"{name} has a value that is not a valid {cast.__name__}. See .env.example."
        ) from None


_BOOLEANS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def read_bool(name, default):
    value = _read(name, env.str, default if default is environ.Env.NOTSET else str(default))
    try:
        return _BOOLEANS[value.strip().lower()]
    except KeyError:
        raise ImproperlyConfigured(f"{name} has a value that is not a valid bool: use 1 or 0.") from None


def read_positive_int(name, default):
    value = _read(name, env.int, default)
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be a positive whole number, not {value}.")
    return value


def read_rate(name, default):
    value = _read(name, env.str, default)
    try:
        parse_rate(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}. See .env.example.") from None
    return value


def read_log_level(name, default):
    value = _read(name, env.str, default).upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ImproperlyConfigured(f"{name} must be DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    return value


def read_count(name, default):
    value = _read(name, env.int, default)
    if value < 0:
        raise ImproperlyConfigured(f"{name} must be 0 or a positive whole number, not {value}.")
    return value


def configure(namespace, *, debug, secret_key, mongodb_uri, allowed_hosts, dotenv=True):
    """Fill ``namespace`` (a settings module's globals) from the environment.

    Each keyword is the stage's default; ``environ.Env.NOTSET`` makes the variable required.
    ``dotenv``: read ``.env`` first (:func:`read_dotenv`); the test stage passes False.
    """
    if dotenv:
        read_dotenv()
    DEBUG = read_bool("DJANGO_DEBUG", debug)
    MONGODB_URI = _read("MONGODB_URI", env.str, mongodb_uri)
    MONGODB_DB_NAME = _read("MONGODB_DB_NAME", env.str, "studymaster")
    MONGODB_MAX_POOL_SIZE = read_positive_int("MONGODB_MAX_POOL_SIZE", 10)
    MONGODB_SERVER_SELECTION_TIMEOUT_MS = read_positive_int("MONGODB_SERVER_SELECTION_TIMEOUT_MS", 5000)
    MONGODB_CONNECT_TIMEOUT_MS = read_positive_int("MONGODB_CONNECT_TIMEOUT_MS", 5000)
    # The migration commands' sides: no default, no fallback to MONGODB_URI (a side is always
    # named). Checked when a command uses them, naming the variable, so that a mistake in one
    # never stops the application itself from starting.
    LOCAL_MONGODB_URI = _read("LOCAL_MONGODB_URI", env.str, "")
    ATLAS_MONGODB_URI = _read("ATLAS_MONGODB_URI", env.str, "")
    PROMETHEUS_MULTIPROC_DIR = _read("PROMETHEUS_MULTIPROC_DIR", env.str, "")
    if PROMETHEUS_MULTIPROC_DIR and not Path(PROMETHEUS_MULTIPROC_DIR).is_dir():
        raise ImproperlyConfigured(
            "PROMETHEUS_MULTIPROC_DIR must name an existing, writable directory (emptied at each deploy)."
        )
    if not MONGODB_DB_NAME.replace("_", "").replace("-", "").isalnum() or len(MONGODB_DB_NAME) > 63:
        raise ImproperlyConfigured(
            "MONGODB_DB_NAME must be 1-63 letters, digits, '-' or '_' (MongoDB database name rules)."
        )
    rest_framework = {
        **namespace["REST_FRAMEWORK"],
        "DEFAULT_THROTTLE_RATES": {
            "login": read_rate("THROTTLE_RATE_LOGIN", "20/min"),
            "register": read_rate("THROTTLE_RATE_REGISTER", "10/min"),
            "password": read_rate("THROTTLE_RATE_PASSWORD", "10/hour"),
            "profile": read_rate("THROTTLE_RATE_PROFILE", "30/hour"),
            "study_session": read_rate("THROTTLE_RATE_STUDY_SESSION", "60/min"),
        },
        # How many reverse proxies append to X-Forwarded-For; 0 trusts only REMOTE_ADDR,
        # so a client cannot pick its own throttle key by sending the header.
        "NUM_PROXIES": read_count("TRUSTED_PROXY_COUNT", 0),
    }
    simple_jwt = {
        **namespace["SIMPLE_JWT"],
        "ACCESS_TOKEN_LIFETIME": timedelta(minutes=read_positive_int("JWT_ACCESS_TOKEN_MINUTES", 15)),
        "REFRESH_TOKEN_LIFETIME": timedelta(days=read_positive_int("JWT_REFRESH_TOKEN_DAYS", 7)),
    }
    namespace.update(
        DEBUG=DEBUG,
        REST_FRAMEWORK=rest_framework,
        SIMPLE_JWT=simple_jwt,
        # Fair play (docs/gamification.md): how long after it ended a study session may be logged,
        # and how many minutes of one local day's study pay points.
        STUDY_SESSION_MAX_BACKDATE_DAYS=read_positive_int("STUDY_SESSION_MAX_BACKDATE_DAYS", 7),
        STUDY_DAILY_CAP_MINUTES=read_positive_int("STUDY_DAILY_CAP_MINUTES", 720),
        SECRET_KEY=_read("SECRET_KEY", env.str, secret_key),
        ALLOWED_HOSTS=_read("ALLOWED_HOSTS", env.list, allowed_hosts),
        CSRF_TRUSTED_ORIGINS=_read("CSRF_TRUSTED_ORIGINS", env.list, []),
        CORS_ALLOWED_ORIGINS=_read("CORS_ALLOWED_ORIGINS", env.list, []),
        MONGODB_URI=MONGODB_URI,
        MONGODB_DB_NAME=MONGODB_DB_NAME,
        MONGODB_MAX_POOL_SIZE=MONGODB_MAX_POOL_SIZE,
        MONGODB_SERVER_SELECTION_TIMEOUT_MS=MONGODB_SERVER_SELECTION_TIMEOUT_MS,
        MONGODB_CONNECT_TIMEOUT_MS=MONGODB_CONNECT_TIMEOUT_MS,
        LOCAL_MONGODB_URI=LOCAL_MONGODB_URI,
        ATLAS_MONGODB_URI=ATLAS_MONGODB_URI,
        DATABASES={
            "default": {
                "ENGINE": "django_mongodb_backend",
                "HOST": MONGODB_URI,
                "NAME": MONGODB_DB_NAME,
                "OPTIONS": client_options(
                    MONGODB_URI,
                    max_pool_size=MONGODB_MAX_POOL_SIZE,
                    server_selection_timeout_ms=MONGODB_SERVER_SELECTION_TIMEOUT_MS,
                    connect_timeout_ms=MONGODB_CONNECT_TIMEOUT_MS,
                    # Feed the health detail and /metrics (studymaster.observability).
                    event_listeners=mongo_event_listeners(),
                ),
            }
        },
        # Monitors: Authorization: Bearer <token>. Empty HEALTH_TOKEN: staff only; empty
        # METRICS_TOKEN: /metrics answers 404.
        HEALTH_TOKEN=_read("HEALTH_TOKEN", env.str, ""),
        METRICS_TOKEN=_read("METRICS_TOKEN", env.str, ""),
        HEALTH_TIMEOUT_MS=read_positive_int("HEALTH_TIMEOUT_MS", 2000),
        PROMETHEUS_MULTIPROC_DIR=PROMETHEUS_MULTIPROC_DIR,
        LOG_LEVEL=read_log_level("LOG_LEVEL", "INFO"),
        # A one-way override of the maintenance flag (studymaster.maintenance): 1 forces at least
        # "on" in this process; nothing here forces it off.
        MAINTENANCE_MODE=read_bool("MAINTENANCE_MODE", False),
    )
    # Operation-by-operation database logging only in development, and only when asked for.
    namespace["LOGGING"] = logging_config(
        namespace["LOG_LEVEL"], db_debug=DEBUG and namespace["LOG_LEVEL"] == "DEBUG"
    )


def logging_config(level, *, db_debug):
    """Console logging with credentials scrubbed from every record.

    ``django.db.backends`` logs each MongoDB operation with its arguments at DEBUG,
    so it stays at INFO unless ``db_debug`` (development only).
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "studymaster.redaction.RedactingLogFilter"}},
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "filters": ["redact"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "DEBUG" if db_debug else "INFO"},
            "pymongo": {"level": "WARNING"},
        },
    }


INSTALLED_APPS = [
    "studymaster.apps.MongoAdminConfig",
    "studymaster.apps.MongoAuthConfig",
    "studymaster.apps.MongoContentTypesConfig",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_mongodb_backend",
    "rest_framework",
    "corsheaders",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "sessions_app",
    "gamification",
    "migration_tools",
    "operations",
]

MIGRATION_MODULES = {
    "admin": "mongo_migrations.admin",
    "auth": "mongo_migrations.auth",
    "contenttypes": "mongo_migrations.contenttypes",
}

DEFAULT_AUTO_FIELD = "django_mongodb_backend.fields.ObjectIdAutoField"

MIDDLEWARE = [
    "studymaster.observability.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "studymaster.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.AdminLoginThrottleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "studymaster.errors.DatabaseErrorMiddleware",
    "operations.middleware.MaintenanceModeMiddleware",
]

# The development settings set it: studymaster/wsgi.py and asgi.py then refuse a remote MONGODB_URI.
SERVE_LOCAL_DATABASE_ONLY = False

ROOT_URLCONF = "studymaster.urls"
WSGI_APPLICATION = "studymaster.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # The admin's banner while maintenance is on (templates/admin/base_site.html).
                "operations.context_processors.maintenance",
            ],
        },
    },
]

AUTH_USER_MODEL = "accounts.User"
# ModelBackend's permission query hits SecantusDB defect A; this one reads without the join.
AUTHENTICATION_BACKENDS = ["accounts.backends.PermissionReadingBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# Django masks settings by name only; these also mask MongoDB URIs wherever they appear.
DEFAULT_EXCEPTION_REPORTER_FILTER = "studymaster.redaction.RedactingExceptionReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "studymaster.redaction.RedactingExceptionReporter"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "studymaster.api.StandardPagination",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["studymaster.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "studymaster.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "PAGE_SIZE": 20,
}

# Lifetimes come from the environment in configure(). Rotation and revocation are ours
# (accounts.services.token_refresh and the RevokedToken denylist), not simplejwt's
# token_blacklist app, whose BigAutoField migrations do not run on MongoDB (docs/api.md).
SIMPLE_JWT = {
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": False,  # the denylist in accounts does this instead
    "UPDATE_LAST_LOGIN": False,  # one write per login for a field nobody reads
    # Tokens carry a hash of the password hash: a password change ends every earlier token.
    "CHECK_REVOKE_TOKEN": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "StudyMaster API",
    "DESCRIPTION": "Log study sessions, earn points, levels, streaks, badges and quest rewards.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from drf-spectacular-sidecar's static files: nothing from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# CORS only for the API. The front end sends Idempotency-Key and reads Retry-After.
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_HEADERS = (*default_headers, "idempotency-key")
CORS_EXPOSE_HEADERS = ["Retry-After"]
