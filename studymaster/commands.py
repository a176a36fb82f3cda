"""What every management command of ours shares: the errors that carry its exit code, one line per
failure, and a client.

The exit codes themselves are defined with the classification of database errors, in
``studymaster.errors`` (``EXIT_REFUSED``, ``EXIT_CANNOT_RUN``, ``EXIT_INTERRUPTED``).
:func:`command_failure` is the one mapping from an exception to a command's exit code and
message: the audit record of a migration run and the process's own exit code both come from it,
so they always agree.
"""

from __future__ import annotations

import errno

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from studymaster.errors import (
    EXIT_CANNOT_RUN,
    EXIT_INTERRUPTED,
    EXIT_REFUSED,
    command_error,
    database_error_cause,
)
from studymaster.mongo import make_client, redact

INTERRUPTED = "interrupted; run the same command again"
NO_SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


def refuse(message: str) -> CommandError:
    """Exit code 1: the input or the request was refused, or differences were found."""
    return CommandError(message, returncode=EXIT_REFUSED)


def cannot_run(message: str) -> CommandError:
    """Exit code 2: configuration, connection, authentication or quota."""
    return CommandError(redact(message), returncode=EXIT_CANNOT_RUN)


def interrupted(message: str = INTERRUPTED) -> CommandError:
    """Exit code 130: stopped by Ctrl-C before it finished."""
    return CommandError(message, returncode=EXIT_INTERRUPTED)


def command_failure(exc: BaseException, *, interrupted_message: str = INTERRUPTED) -> CommandError:
    """The CommandError (message and exit code) that ``exc`` ends a command with.

    A CommandError is itself; Ctrl-C is 130; database, configuration and file-system errors, and
    anything unforeseen, are 2 with a one-line ``<kind>: <message>``. Never raises.
    """
    if isinstance(exc, CommandError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return interrupted(interrupted_message)
    cause = database_error_cause(exc)
    if cause is not None:
        return command_error(cause)
    if isinstance(exc, ImproperlyConfigured):
        return cannot_run(f"configuration: {exc}")
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        kind = "disk full" if exc.errno in NO_SPACE_ERRNOS else "file system"
        return cannot_run(f"{kind}: {where}{exc.strerror or exc}")
    return cannot_run(
        f"internal error: {type(exc).__name__}: {exc}. Run the command again with --traceback to see "
        "where, and report it."
    )


class OperatorCommand(BaseCommand):
    """The base of our operator commands: every failure ends as one line and its exit code.

    Django prints a CommandError as ``CommandError: <message>`` and exits with its code, and
    anything else as a traceback with exit code 1. Here every exception becomes the CommandError
    of :func:`command_failure`; ``--traceback`` still shows where it came from.
    """

    # What Ctrl-C prints; commands that resume say so.
    interrupted_message = INTERRUPTED

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except (CommandError, SystemExit):
            raise
        except BaseException as exc:
            raise command_failure(exc, interrupted_message=self.interrupted_message) from exc


def client_for(uri: str, *, name: str, **overrides) -> MongoClient:
    """A client built with the project's options (and ``overrides``, MongoClient's keyword
    arguments), already answering a ping.

    A malformed URI, a name that DNS does not know (both named by ``name``, the option or
    variable the URI came from) or a server that does not answer is exit code 2.
    """
    try:
        client = make_client(uri, name=name, **overrides)
    except ImproperlyConfigured as exc:
        raise cannot_run(str(exc)) from None
    except PyMongoError as exc:  # a mongodb+srv:// name is resolved here, before any connection
        raise command_error(exc, uri_name=name) from None
    try:
        client.admin.command("ping")
    except PyMongoError as exc:
        client.close()
        raise command_error(exc, uri_name=name) from None
    return client
