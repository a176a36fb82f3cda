"""What every management command of ours shares: the errors that carry its exit code, and a client.

The exit codes themselves are defined with the classification of database errors, in
``studymaster.errors`` (``EXIT_REFUSED``, ``EXIT_CANNOT_RUN``, ``EXIT_INTERRUPTED``).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from studymaster.errors import EXIT_CANNOT_RUN, EXIT_REFUSED, command_error
from studymaster.mongo import make_client, redact


def refuse(message: str) -> CommandError:
    """Exit code 1: the input or the request was refused, or differences were found."""
    return CommandError(message, returncode=EXIT_REFUSED)


def cannot_run(message: str) -> CommandError:
    """Exit code 2: configuration, connection, authentication or quota."""
    return CommandError(redact(message), returncode=EXIT_CANNOT_RUN)


def client_for(uri: str, *, name: str) -> MongoClient:
    """A client built with the project's options, already answering a ping.

    A malformed URI (named ``name`` in the message) or a server that does not answer is exit code 2.
    """
    try:
        client = make_client(uri, name=name)
    except ImproperlyConfigured as exc:
        raise cannot_run(str(exc)) from None
    try:
        client.admin.command("ping")
    except PyMongoError as exc:
        client.close()
        raise command_error(exc) from None
    return client
