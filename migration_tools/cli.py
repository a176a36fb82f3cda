"""What the three migration commands share: clients, exit codes, the audit record."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError
from django.utils import timezone
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from studymaster.errors import command_error
from studymaster.mongo import LOOPBACK_HOSTS, make_client, parse_uri, redact, split_host

if TYPE_CHECKING:
    from migration_tools.models import MigrationRun

EXIT_REFUSED = 1
EXIT_CANNOT_RUN = 2


def refuse(message: str) -> CommandError:
    """Exit code 1: the input or the request was refused, or differences were found."""
    return CommandError(message, returncode=EXIT_REFUSED)


def cannot_run(message: str) -> CommandError:
    """Exit code 2: configuration, connection, authentication or quota."""
    return CommandError(redact(message), returncode=EXIT_CANNOT_RUN)


def client_for(uri: str, *, name: str) -> MongoClient:
    """A client built with the project's options; a malformed URI is exit code 2."""
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

        status = {0: MigrationRun.Status.OK, 1: MigrationRun.Status.REFUSED}.get(
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
