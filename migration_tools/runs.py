"""What the migration commands share: exit codes, refusals, clients, and the audit record of a run.

The exit codes, ``refuse``, ``cannot_run`` and ``client_for`` are every command's
(``studymaster.errors``, ``studymaster.commands``) and are named here for the migration
commands; :func:`server_key` and :class:`Audit` are theirs alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from pymongo.errors import PyMongoError

from studymaster.commands import cannot_run, client_for, refuse
from studymaster.errors import EXIT_CANNOT_RUN, EXIT_INTERRUPTED, EXIT_REFUSED, command_error
from studymaster.mongo import LOOPBACK_HOSTS, parse_uri, redact, split_host

if TYPE_CHECKING:
    from migration_tools.models import MigrationRun

__all__ = [
    "EXIT_CANNOT_RUN",
    "EXIT_INTERRUPTED",
    "EXIT_REFUSED",
    "Audit",
    "MigrationCommand",
    "cannot_run",
    "client_for",
    "refuse",
    "server_key",
]


class MigrationCommand(BaseCommand):
    """The base of the migration commands."""

    # The checks load every URLconf and app; a migration run needs none of it (~0.2 s a run).
    requires_system_checks = []


def server_key(uri: str) -> frozenset[str]:
    """The hosts of a URI, normalised, to tell whether two URIs reach the same server.

    Empty for a malformed URI (client_for reports that one with its name).
    """
    try:
        parsed = parse_uri(uri)
    except ImproperlyConfigured:
        return frozenset()
    hosts = set()
    for host in parsed.hosts:
        name, port = split_host(host)
        name = "127.0.0.1" if name.lower() in LOOPBACK_HOSTS else name.lower()
        hosts.add(f"{name}:{port or 27017}")
    return frozenset(hosts)


@dataclass
class Audit:
    """The MigrationRun record of one command run; a failure to write it only warns."""

    command: str
    source: str = ""
    target: str = ""
    database: str = ""
    warn: Callable[[str], object] = print
    record: MigrationRun | None = None
    counts: dict = field(default_factory=dict)
    checksums: dict = field(default_factory=dict)

    def start(self) -> None:
        from migration_tools.models import MigrationRun

        try:
            self.record = MigrationRun.objects.create(
                command=self.command,
                started_at=timezone.now(),
                source=redact(self.source),
                target=redact(self.target),
                database=self.database,
            )
        except Exception as exc:  # the audit must never stop the migration itself
            self.warn(f"warning: the audit record (MigrationRun) was not written: {redact(str(exc))[:200]}")

    def finish(self, exit_code: int, message: str = "") -> None:
        if self.record is None:
            return
        from migration_tools.models import MigrationRun

        status = {0: MigrationRun.Status.OK, EXIT_REFUSED: MigrationRun.Status.REFUSED}.get(
            exit_code, MigrationRun.Status.FAILED
        )
        with contextlib.suppress(Exception):
            MigrationRun.objects.filter(pk=self.record.pk).update(
                status=status,
                exit_code=exit_code,
                finished_at=timezone.now(),
                counts=self.counts,
                checksums=self.checksums,
                message=redact(message)[:2000],
            )

    @contextlib.contextmanager
    def running(self):
        """Record the run around the body; CommandError and PyMongoError set its exit code."""
        self.start()
        try:
            yield self
        except CommandError as exc:
            self.finish(exc.returncode, str(exc))
            raise
        except PyMongoError as exc:
            error = command_error(exc)
            self.finish(error.returncode, str(error))
            raise error from None
        except BaseException as exc:
            self.finish(EXIT_CANNOT_RUN, f"{type(exc).__name__}: {exc}")
            raise
        else:
            self.finish(0, "")
