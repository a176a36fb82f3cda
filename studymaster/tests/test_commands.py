"""What every operator command shares: one mapping from an exception to a message and an exit code."""

import errno

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError
from django.db import DatabaseError
from pymongo.errors import ServerSelectionTimeoutError

from studymaster.commands import INTERRUPTED, OperatorCommand, command_failure
from studymaster.errors import EXIT_CANNOT_RUN, EXIT_INTERRUPTED, EXIT_REFUSED


def _database_error() -> DatabaseError:
    """What the ORM raises: a DatabaseError with no text of its own, the PyMongo error as its cause."""
    try:
        try:
            raise ServerSelectionTimeoutError("127.0.0.1:1: [Errno 111] Connection refused, Timeout: 0.3s")
        except ServerSelectionTimeoutError as cause:
            raise DatabaseError() from cause
    except DatabaseError as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "code", "start"),
    [
        (CommandError("refused", returncode=EXIT_REFUSED), EXIT_REFUSED, "refused"),
        (KeyboardInterrupt(), EXIT_INTERRUPTED, INTERRUPTED),
        (_database_error(), EXIT_CANNOT_RUN, "unreachable: No MongoDB server answered"),
        (
            ImproperlyConfigured("ATLAS_MONGODB_URI is empty."),
            EXIT_CANNOT_RUN,
            "configuration: ATLAS_MONGODB_URI",
        ),
        (
            OSError(errno.ENOSPC, "No space left on device", "/backups/d/x.bson"),
            EXIT_CANNOT_RUN,
            "disk full: /backups/d/x.bson: No space left on device",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "/backups"),
            EXIT_CANNOT_RUN,
            "file system: /backups: Permission denied",
        ),
        (ZeroDivisionError("division by zero"), EXIT_CANNOT_RUN, "internal error: ZeroDivisionError"),
    ],
    ids=["a refusal", "Ctrl-C", "the ORM's error", "settings", "a full disk", "a file system error", "a bug"],
)
def test_every_exception_ends_a_command_as_one_line_and_its_exit_code(exc, code, start):
    error = command_failure(exc)
    assert error.returncode == code
    assert str(error).startswith(start) and "\n" not in str(error)


class _Failing(OperatorCommand):
    interrupted_message = "interrupted; run it again"

    def __init__(self, exc):
        super().__init__()
        self.exc = exc

    def handle(self, *args, **options):
        raise self.exc


def test_an_operator_command_raises_the_mapped_command_error_keeping_the_cause():
    with pytest.raises(CommandError) as caught:
        _Failing(KeyboardInterrupt()).execute(verbosity=1, no_color=True, force_color=False, skip_checks=True)
    assert (caught.value.returncode, str(caught.value)) == (EXIT_INTERRUPTED, "interrupted; run it again")
    assert isinstance(caught.value.__cause__, KeyboardInterrupt)  # what --traceback shows
    cause = ValueError("boom")
    with pytest.raises(CommandError) as caught:
        _Failing(cause).execute(verbosity=1, no_color=True, force_color=False, skip_checks=True)
    assert caught.value.returncode == EXIT_CANNOT_RUN and caught.value.__cause__ is cause
