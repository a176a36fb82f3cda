"""Classification of database errors, what each class means for an operator, and its HTTP answer;
and :class:`DomainError`, the base of the exceptions with which the domain refuses a request.

One function, :func:`classify`, names the kind of a PyMongo error and writes a message that
tells an operator what to do. Everything else maps that kind: :func:`command_error` to exit
code 2 for the management commands, :func:`database_error_response` (DRF) and
:class:`DatabaseErrorMiddleware` (plain Django views) to a JSON reply in the one error shape.

Atlas answers many unrelated refusals with code 8000 (``AtlasError``): over quota, bad auth,
unauthorized actions, unsupported commands. So code 8000 is classified by its message.
Every message here is safe to print: URI credentials are redacted, and the API never shows
the classified message, only a generic one (the full message goes to the log).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError
from django.http import JsonResponse
from pymongo.errors import (
    BulkWriteError,
    ConfigurationError,
    ConnectionFailure,
    ExecutionTimeout,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
    WriteConcernError,
    WTimeoutError,
)

from studymaster.mongo import redact

logger = logging.getLogger("studymaster.database")

# The exit codes scripts can rely on, the same for every command of ours (docs/migration.md).
EXIT_REFUSED = 1  # the input or the request was refused, or differences were found
EXIT_CANNOT_RUN = 2  # configuration, connection, authentication, quota
EXIT_INTERRUPTED = 130  # stopped by Ctrl-C before it finished, as a shell reports SIGINT

AUTH_FAILED_CODES = {18}
UNAUTHORIZED_CODES = {13}
ATLAS_ERROR_CODE = 8000
# Server codes that mean "this node is going away or is not primary": worth another try.
TRANSIENT_CODES = {
    6,  # HostUnreachable
    7,  # HostNotFound
    89,  # NetworkTimeout
    91,  # ShutdownInProgress
    189,  # PrimarySteppedDown
    262,  # ExceededTimeLimit
    9001,  # SocketException
    10107,  # NotWritablePrimary
    11600,  # InterruptedAtShutdown
    11602,  # InterruptedDueToReplStateChange
    13435,  # NotPrimaryNoSecondaryOk
    13436,  # NotPrimaryOrSecondary
}
TIMEOUT_CODES = {50, 64}  # MaxTimeMSExpired, WriteConcernFailed (wtimeout)
TRANSIENT_LABELS = ("RetryableWriteError", "TransientTransactionError", "RetryableError")

# What each kind tells the API: (HTTP status, error code, generic message). The classified
# message is for the log only: it can name hosts, users and collections.
UNAVAILABLE = (503, "database_unavailable", "The database is temporarily unavailable. Try again shortly.")
INTERNAL = (500, "database_error", "The server could not complete the request. The operators have been told.")
HTTP_BY_KIND = {
    "unreachable": UNAVAILABLE,
    "transient": UNAVAILABLE,
    "timeout": UNAVAILABLE,
    "pool_exhausted": UNAVAILABLE,
    # Seen from the app, these are an unreachable database too: answer 503 so that load
    # balancers take the instance out of rotation while an operator fixes the cause.
    "access_list": UNAVAILABLE,
    "dns": UNAVAILABLE,
    "tls": UNAVAILABLE,
    "quota": (507, "storage_quota", "The database is out of space. The operators have been told."),
    "limit": (
        507,
        "storage_quota",
        "The database has reached a limit of its plan. The operators have been told.",
    ),
}
RETRY_AFTER_SECONDS = 5

# Atlas's own texts, as collected in docs/operations.md and atlas-error-samples.json.
_QUOTA = re.compile(r"over (your|its) space quota|space quota", re.IGNORECASE)
_LIMIT = re.compile(
    r"already using \d+ (collections|databases|connections)|too many (collections|databases|connections)"
    r"|connection limit|maximum number of (collections|databases|connections)",
    re.IGNORECASE,
)
_UNSUPPORTED = re.compile(
    r"is not allowed or the syntax is incorrect|not supported|unsupported", re.IGNORECASE
)
_AUTH_FAILED = re.compile(r"bad auth|authentication failed", re.IGNORECASE)
_UNAUTHORIZED = re.compile(r"not authorized|not allowed to do action", re.IGNORECASE)
_TLS = re.compile(r"SSL|TLS|certificate", re.IGNORECASE)
_CLOSED = re.compile(
    r"connection closed|closed by (the )?peer|connection reset|handshake|EOF occurred", re.IGNORECASE
)
_ATLAS_HOST = re.compile(r"\.mongodb\.net", re.IGNORECASE)
# Where the refused right was wanted: "not authorized on <db> to execute ..." (mongod, the embedded
# server) and "... not allowed to do action [insert] on [<db>.<collection>]" (Atlas).
_UNAUTHORIZED_ON = re.compile(
    r"not authorized on (?P<db>[^\s]+) to execute|not allowed to do action \[\w+\] on \[(?P<atlas>[^\].]+)"
)
# Rights on these are server-wide (serverStatus, listDatabases...), not a database's own.
_SERVER_WIDE = {"admin", "cluster"}


class DomainError(Exception):
    """A request that the domain's rules refuse; the base class of every domain exception.

    Services raise it (or a subclass); views never catch it: ``studymaster.api.exception_handler``
    answers it in the one error shape with ``status`` and ``code``, the message, and, when the
    error is about one input, ``fields`` naming ``field``.
    """

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class DatabaseProblem:
    kind: str
    message: str

    @property
    def retryable(self) -> bool:
        """A fresh attempt of the same idempotent operation may succeed."""
        return self.kind == "transient"


def _detail(exc: BaseException) -> str:
    """The error's own text without the reply document PyMongo appends, credentials redacted."""
    details = getattr(exc, "details", None)
    if (
        isinstance(exc, OperationFailure | NotPrimaryError)
        and isinstance(details, dict)
        and details.get("errmsg")
    ):
        text = str(details["errmsg"])
    else:
        text = str(exc).split(", full error:")[0]
    return redact(text.split(" (configured timeouts")[0])[:300]


def _has_transient_label(exc: PyMongoError) -> bool:
    return any(exc.has_error_label(label) for label in TRANSIENT_LABELS)


def classify(exc: BaseException, *, uri_name: str = "MONGODB_URI") -> DatabaseProblem:
    """Name the kind of failure and say what to do about it. Never raises.

    ``uri_name`` is the option or variable the URI came from, for the advice that names it.
    """
    if isinstance(exc, BulkWriteError) and (first := _first_bulk_error(exc)) is not None:
        return classify(first, uri_name=uri_name)
    detail = _detail(exc)
    if isinstance(exc, OperationFailure):
        return _classify_reply(exc, detail)
    if isinstance(exc, WaitQueueTimeoutError):
        return DatabaseProblem(
            "pool_exhausted",
            f"Every connection of the pool was busy ({detail}). Requests are waiting on slow database "
            "operations: look for slow queries or missing indexes, or raise MONGODB_MAX_POOL_SIZE while "
            "keeping pool size x workers x instances under the cluster's connection limit (500 on M0).",
        )
    if isinstance(exc, ServerSelectionTimeoutError):
        return _classify_selection(detail)
    if isinstance(exc, NetworkTimeout):
        return DatabaseProblem(
            "timeout",
            f"A database operation timed out on the network ({detail}). Retry; if it persists, check "
            "the latency to the cluster and for slow operations in the Atlas Profiler.",
        )
    if isinstance(exc, NotPrimaryError):
        return DatabaseProblem(
            "transient",
            f"The server is failing over or shutting down ({detail}). This happens during Atlas "
            "maintenance; the operation can be retried.",
        )
    if isinstance(exc, ConnectionFailure):
        return DatabaseProblem(
            "transient",
            f"The connection to MongoDB failed ({detail}). This is usually a failover or a network "
            "blip; the operation can be retried.",
        )
    if isinstance(exc, ConfigurationError):
        if any(word in detail for word in ("DNS", "SRV", "_mongodb._tcp", "resolution lifetime")):
            return DatabaseProblem(
                "dns",
                f"The cluster's DNS SRV record could not be resolved ({detail}). Check the cluster "
                f"host name in {uri_name} (copy it again from Atlas > Connect), and that this host's "
                "DNS resolver answers SRV queries (some corporate and container resolvers do not; "
                "try 8.8.8.8 or the standard mongodb:// seed-list string).",
            )
        return DatabaseProblem("configuration", f"The MongoDB client configuration is invalid: {detail}")
    if isinstance(exc, PyMongoError) and _has_transient_label(exc):
        return DatabaseProblem("transient", f"MongoDB reported a transient error ({detail}). Retry.")
    return DatabaseProblem("error", f"MongoDB reported an error: {detail}")


def _first_bulk_error(exc: BulkWriteError) -> OperationFailure | None:
    """The first write error, else write-concern error, of a bulk write (the ORM inserts in bulk)."""
    details = exc.details if isinstance(exc.details, dict) else {}
    for key, error_class in (("writeErrors", OperationFailure), ("writeConcernErrors", WriteConcernError)):
        for error in details.get(key) or []:
            if isinstance(error, dict) and error.get("code") not in (None, 11000):
                return error_class(str(error.get("errmsg", "")), error.get("code"), error)
    return None


def _classify_reply(exc: OperationFailure, detail: str) -> DatabaseProblem:
    """Classify a server's error reply by its code, its labels and, for Atlas's 8000, its text."""
    code = exc.code
    if code == ATLAS_ERROR_CODE or code is None:
        if _QUOTA.search(detail):
            return DatabaseProblem(
                "quota",
                f"Atlas refused a write: the cluster is over its storage quota ({detail}). M0 allows "
                "512 MB of data and indexes. Delete data you do not need (old sessions, the points "
                "ledger's archive), drop unused indexes, or move to a paid tier (M10+).",
            )
        if _LIMIT.search(detail):
            return DatabaseProblem(
                "limit",
                f"Atlas refused the operation: a limit of the cluster tier was reached ({detail}). "
                "M0 allows 500 collections, 100 databases and 500 connections. Drop unused "
                "collections, lower the connection count, or move to a paid tier.",
            )
        if _UNSUPPORTED.search(detail):
            return DatabaseProblem(
                "unsupported",
                f"Atlas does not allow this command on this tier ({detail}). The code must avoid it on "
                "shared tiers (M0/Flex); see Atlas's 'Unsupported Commands' page.",
            )
    if code in AUTH_FAILED_CODES or _AUTH_FAILED.search(detail):
        return DatabaseProblem(
            "authentication",
            "Authentication failed: check the user name and password in the URI (percent-encode "
            "special characters), the authSource (admin on Atlas), and that the database user "
            "exists in Atlas > Database Access.",
        )
    if code in UNAUTHORIZED_CODES or _UNAUTHORIZED.search(detail):
        return DatabaseProblem("authorization", _unauthorized_message(detail))
    if isinstance(exc, ExecutionTimeout | WTimeoutError) or code in TIMEOUT_CODES:
        return DatabaseProblem(
            "timeout",
            f"The server did not finish in time ({detail}). Retry; if it persists, look for slow "
            "operations (Atlas Profiler) or a replica set that cannot reach a majority.",
        )
    if code in TRANSIENT_CODES or _has_transient_label(exc):
        return DatabaseProblem(
            "transient",
            f"The server is failing over or shutting down ({detail}). This happens during Atlas "
            "maintenance; the operation can be retried.",
        )
    if code == ATLAS_ERROR_CODE:
        return DatabaseProblem(
            "atlas",
            f"Atlas refused the operation (AtlasError 8000: {detail}). Read the message: it is "
            "usually a quota, a permission or a command the tier does not support.",
        )
    return DatabaseProblem("error", f"MongoDB reported an error: {detail}")


def _unauthorized_message(detail: str) -> str:
    """Name the database the user lacks a right on: the one to grant, or the name to correct."""
    match = _UNAUTHORIZED_ON.search(detail)
    database = match and (match["db"] or match["atlas"])
    if not database:
        return (
            f"The database user lacks a right this needs ({detail}). Grant it the role the message "
            "names in Atlas > Database Access."
        )
    if database in _SERVER_WIDE:
        return (
            f"The database user lacks a server-wide right ({detail}), which a readWrite user never "
            "has; this command needs a user with more rights, or does without this part."
        )
    return (
        f"The database user has no right on database {database!r} ({detail}). If that name is "
        f"right, grant the user readWrite on {database} (Atlas > Database Access); if it is a typo, "
        "correct the database name."
    )


def _classify_selection(detail: str) -> DatabaseProblem:
    """No server could be selected; the text of each host's failure hints at why."""
    if "CERTIFICATE_VERIFY_FAILED" in detail or "certificate verify failed" in detail.lower():
        return DatabaseProblem(
            "tls",
            f"The TLS handshake with the cluster failed: its certificate could not be verified "
            f"({detail}). Install the system CA bundle (ca-certificates) or point tlsCAFile at it, "
            "and check for a proxy that intercepts TLS.",
        )
    if _ATLAS_HOST.search(detail) and (_CLOSED.search(detail) or _TLS.search(detail)):
        return DatabaseProblem(
            "access_list",
            f"Atlas closed the connection before it was established ({detail}). The usual cause is "
            "that this host's public IP address is not on the project's IP Access List (Atlas > "
            "Network Access); add it, or check for a firewall blocking port 27017.",
        )
    return DatabaseProblem(
        "unreachable",
        f"No MongoDB server answered ({detail}). Check the host, the port, that the server is "
        "running, and, on Atlas, the IP access list.",
    )


def command_error(exc: PyMongoError, *, uri_name: str = "MONGODB_URI") -> CommandError:
    """A CommandError with exit code 2 (could not run) carrying the classified message."""
    problem = classify(exc, uri_name=uri_name)
    return CommandError(f"{problem.kind}: {problem.message}", returncode=EXIT_CANNOT_RUN)


@dataclass(frozen=True)
class HttpProblem:
    status: int
    code: str
    message: str
    headers: dict


def http_problem(exc: PyMongoError) -> HttpProblem:
    """The HTTP answer to ``exc``: status, code, a generic message and headers.

    Logs the classified message; the reply carries none of the error's own text.
    """
    problem = classify(exc)
    status, code, message = HTTP_BY_KIND.get(problem.kind, INTERNAL)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else {}
    log = logger.warning if status == 503 else logger.error
    log("database %s: %s", problem.kind, problem.message)
    return HttpProblem(status, code, message, headers)


def database_error_cause(exc: BaseException) -> PyMongoError | None:
    """The PyMongo error behind ``exc``: itself, or the cause of the ORM's DatabaseError.

    django-mongodb-backend re-raises PyMongo errors as ``DatabaseError`` (``IntegrityError``
    for duplicate keys, which the domain code handles and which is not ours to answer).
    """
    if isinstance(exc, PyMongoError):
        return exc
    if isinstance(exc, DatabaseError) and not isinstance(exc, IntegrityError):
        cause = exc.__cause__
        if isinstance(cause, PyMongoError):
            return cause
    return None


def database_error_response(exc: PyMongoError):
    """A DRF Response in the one error shape, for ``studymaster.api.exception_handler``."""
    from rest_framework.response import Response

    problem = http_problem(exc)
    return Response(
        {"code": problem.code, "message": problem.message}, status=problem.status, headers=problem.headers
    )


class DatabaseErrorMiddleware:
    """Answer a PyMongo error escaping a plain Django view with the same JSON as the API."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        database_error = database_error_cause(exception)
        if database_error is None:
            return None
        problem = http_problem(database_error)
        response = JsonResponse({"code": problem.code, "message": problem.message}, status=problem.status)
        for name, value in problem.headers.items():
            response[name] = value
        return response
