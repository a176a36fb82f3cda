"""Classification of database errors, and what each class means for an operator.

Every message here is safe to print: it never carries a URI's credentials.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.management.base import CommandError
from pymongo.errors import (
    ConfigurationError,
    ConnectionFailure,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)

from studymaster.mongo import redact

AUTH_FAILED_CODES = {18}
UNAUTHORIZED_CODES = {13}


@dataclass(frozen=True)
class DatabaseProblem:
    kind: str
    message: str


def classify(exc: BaseException) -> DatabaseProblem:
    """Name the kind of failure and say what to do about it."""
    detail = redact(str(exc)).split(", full error:")[0]
    if isinstance(exc, OperationFailure):
        text = detail.lower()
        if exc.code in AUTH_FAILED_CODES or "bad auth" in text or "authentication failed" in text:
            return DatabaseProblem(
                "authentication", "Authentication failed: check the user name and password in the URI."
            )
        if "over your space quota" in text:
            return DatabaseProblem(
                "quota",
                f"The cluster is over its storage quota ({detail}). Free space or move to a larger tier; "
                "Atlas M0 allows 512 MB of data and indexes.",
            )
        if exc.code in UNAUTHORIZED_CODES or "not authorized" in text or "not allowed" in text:
            return DatabaseProblem(
                "authorization",
                f"The database user lacks a right this needs ({detail}). Grant readWrite on the database.",
            )
    if isinstance(exc, ServerSelectionTimeoutError):
        return DatabaseProblem(
            "unreachable",
            f"No MongoDB server answered ({detail.split(' (configured timeouts')[0][:300]}). Check the host, the port, that the server is "
            "running, and, on Atlas, the IP access list.",
        )
    if isinstance(exc, ConnectionFailure):
        return DatabaseProblem("transient", f"The connection to MongoDB failed ({detail[:300]}). Try again.")
    if isinstance(exc, ConfigurationError):
        return DatabaseProblem("configuration", f"The MongoDB client configuration is invalid: {detail}")
    return DatabaseProblem("error", f"MongoDB reported an error: {detail[:500]}")


def command_error(exc: PyMongoError) -> CommandError:
    """A CommandError with exit code 2 (could not run) carrying the classified message."""
    problem = classify(exc)
    return CommandError(f"{problem.kind}: {problem.message}", returncode=2)
