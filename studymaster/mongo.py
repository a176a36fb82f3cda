"""MongoDB connection strings: validation, redaction and the one set of client options.

Both the ORM settings and the migration commands build their clients from
:func:`client_options`, so Atlas gets the same pool, timeouts and write concern
whichever code path talks to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from django.core.exceptions import ImproperlyConfigured
from pymongo import MongoClient
from pymongo.common import URI_OPTIONS_VALIDATOR_MAP
from pymongo.errors import ConfigurationError, InvalidURI
from pymongo.uri_parser_shared import split_options

APP_NAME = "studymaster"

# The userinfo part of any MongoDB URI, wherever it stands in a text.
_URI_USERINFO = re.compile(r"(mongodb(?:\+srv)?://)[^@/\s?#]+@", re.IGNORECASE)

LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


# URI options whose values are secrets: a key file's passphrase, and authentication
# properties (AWS_SESSION_TOKEN:..., an OIDC token resource). Matched without regard to case,
# as drivers read them; the old and the other drivers' spellings too.
SECRET_URI_OPTIONS = (
    "tlsCertificateKeyFilePassword",
    "sslPEMKeyPassword",
    "authMechanismProperties",
    "proxyPassword",
)
_SECRET_OPTION = re.compile(rf"(?<![\w])({'|'.join(SECRET_URI_OPTIONS)})=[^&;\s#'\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    """Return ``text`` with the credentials of every MongoDB URI in it replaced by ``***``: the
    userinfo, and the value of each option in :data:`SECRET_URI_OPTIONS`."""
    return _SECRET_OPTION.sub(r"\1=***", _URI_USERINFO.sub(r"\1***@", text))


@dataclass(frozen=True)
class ParsedUri:
    scheme: str
    hosts: tuple[str, ...]
    database: str
    options: dict

    @property
    def is_srv(self) -> bool:
        return self.scheme == "mongodb+srv"

    @property
    def uses_tls(self) -> bool:
        lowered = {key.lower(): value for key, value in self.options.items()}
        return self.is_srv or bool(lowered.get("tls") or lowered.get("ssl"))

    @property
    def is_loopback(self) -> bool:
        return all(split_host(host)[0] in LOOPBACK_HOSTS for host in self.hosts)


def parse_uri(uri: str, *, name: str = "MONGODB_URI") -> ParsedUri:
    """Check ``uri`` without resolving DNS; raise ImproperlyConfigured naming ``name``.

    The message says how to fix the value and never repeats the URI's credentials.
    """
    if not uri or not uri.strip():
        raise ImproperlyConfigured(f"{name} is empty. Set it to a mongodb:// or mongodb+srv:// URI.")
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in ("mongodb", "mongodb+srv"):
        shown = scheme if sep else redact(uri)[:20]
        raise ImproperlyConfigured(
            f"{name} has the scheme {shown!r}; it must start with mongodb:// "
            "(a self-hosted server) or mongodb+srv:// (Atlas)."
        )
    userinfo, at, hostpart = rest.rpartition("@")
    if at and ":" in userinfo:
        password = userinfo.split(":", 1)[1]
        if re.search(r"[:/?#\[\]@]", unquote(password)) and unquote(password) == password:
            raise ImproperlyConfigured(
                f"{name}: the password holds a reserved character (: / ? # [ ] @). "
                "Percent-encode it, for example with urllib.parse.quote_plus."
            )
    hostlist, _, tail = hostpart.partition("/")
    if "?" in hostlist:
        hostlist, _, query = hostlist.partition("?")
        database = ""
    else:
        database, _, query = tail.partition("?")
    hosts = tuple(h for h in hostlist.split(",") if h)
    if not hosts:
        raise ImproperlyConfigured(f"{name} names no host. Example: mongodb://127.0.0.1:27017/")
    if scheme == "mongodb+srv":
        if len(hosts) > 1:
            raise ImproperlyConfigured(
                f"{name}: a mongodb+srv:// URI names exactly one host, the cluster's "
                "(for example cluster0.abcde.mongodb.net)."
            )
        if ":" in hosts[0]:
            raise ImproperlyConfigured(
                f"{name}: a mongodb+srv:// URI may not carry a port ({split_host(hosts[0])[0]}:…). "
                "Remove the port; DNS SRV records supply it."
            )
    for host in hosts:
        hostname, port = split_host(host)
        if (port or host.endswith(":")) and not (port.isdigit() and 0 < int(port) < 65536):
            raise ImproperlyConfigured(f"{name}: the port of {hostname!r} must be a number from 1 to 65535.")
    options: dict = {}
    if query:
        unknown = sorted(_option_names(query) - _known_options(query))
        if unknown:
            raise ImproperlyConfigured(
                f"{name} has unknown option(s) {', '.join(unknown)}. Remove them or fix their "
                "spelling; see https://www.mongodb.com/docs/manual/reference/connection-string-options/"
            )
        try:
            options = dict(split_options(query, validate=True, warn=False))
        except (ConfigurationError, InvalidURI, ValueError) as exc:
            raise ImproperlyConfigured(
                f"{name} has a bad option: {redact(str(exc))}. See "
                "https://www.mongodb.com/docs/manual/reference/connection-string-options/"
            ) from None
    return ParsedUri(
        scheme=scheme,
        hosts=hosts,
        database=unquote(database),
        options=options,
    )


def refuse_remote_database_in_development(uri: str, *, name: str = "MONGODB_URI") -> None:
    """The development settings (DEBUG on, a published key) serve only a database on this
    machine; raise ImproperlyConfigured naming ``name`` when ``uri`` reaches another one.
    Called where they would serve: runserver (settings/dev.py), WSGI and ASGI (wsgi.py, asgi.py)."""
    if not parse_uri(uri, name=name).is_loopback:
        raise ImproperlyConfigured(
            f"{name} names a database on another machine, and the development settings "
            "(studymaster.settings.dev: DEBUG on, a published SECRET_KEY) do not serve one. "
            "Serve with DJANGO_SETTINGS_MODULE=studymaster.settings.prod, or set "
            f"{name} to a server on 127.0.0.1. Management commands other than runserver are not affected."
        )


def _option_names(query: str) -> set[str]:
    return {pair.partition("=")[0] for pair in re.split("[&;]", query) if pair}


def _known_options(query: str) -> set[str]:
    """The option names in ``query`` that PyMongo knows, in the case they were written."""
    known = {key.lower() for key in URI_OPTIONS_VALIDATOR_MAP}
    return {key for key in _option_names(query) if key.lower() in known}


def split_host(host: str) -> tuple[str, str]:
    """``(name, port)`` of ``name[:port]``, bracketed IPv6 literals included; port ``""`` if absent."""
    if host.endswith("]"):
        return host, ""
    name, colon, port = host.rpartition(":")
    return (name, port) if colon else (host, "")


def client_options(
    uri: str,
    *,
    max_pool_size: int = 10,
    server_selection_timeout_ms: int = 5000,
    connect_timeout_ms: int = 5000,
    app_name: str = APP_NAME,
    name: str = "MONGODB_URI",
    event_listeners: list | None = None,
) -> dict:
    """Keyword arguments for ``MongoClient(uri, **options)``.

    Options written in the URI itself win over these defaults, except the pool
    size and timeouts, which come from settings so that an operator can bound them.
    ``event_listeners`` (PyMongo monitoring listeners) are added when given: the settings
    pass :func:`studymaster.observability.mongo_event_listeners` for the ORM's client.
    """
    parsed = parse_uri(uri, name=name)
    options = {
        "appName": app_name,
        "retryWrites": True,
        "retryReads": True,
        "w": "majority",
        "maxPoolSize": max_pool_size,
        "serverSelectionTimeoutMS": server_selection_timeout_ms,
        "connectTimeoutMS": connect_timeout_ms,
    }
    if parsed.uses_tls:
        options["tls"] = True
    # What the URI itself says about these wins over our defaults.
    written = {key.lower() for key in parsed.options}
    bounded = {"maxPoolSize", "serverSelectionTimeoutMS", "connectTimeoutMS"}
    options = {key: value for key, value in options.items() if key in bounded or key.lower() not in written}
    if event_listeners:
        options["event_listeners"] = list(event_listeners)
    return options


def make_client(uri: str, *, name: str = "MONGODB_URI", **overrides) -> MongoClient:
    """A MongoClient for ``uri`` with the project's options (see :func:`client_options`).

    Pool size and timeouts come from the settings unless overridden.
    """
    from django.conf import settings

    kwargs = {
        "max_pool_size": settings.MONGODB_MAX_POOL_SIZE,
        "server_selection_timeout_ms": settings.MONGODB_SERVER_SELECTION_TIMEOUT_MS,
        "connect_timeout_ms": settings.MONGODB_CONNECT_TIMEOUT_MS,
    }
    options = client_options(uri, name=name, **kwargs)
    options.update(overrides)
    return MongoClient(uri, **options)
