"""What the migration commands share: exit codes, refusals, clients, which servers they name, and the
audit record of a run.

The exit codes, ``refuse``, ``cannot_run``, ``client_for`` and ``command_failure`` are every
command's (``studymaster.errors``, ``studymaster.commands``) and are named here for the migration
commands; the rest are theirs alone.

Where a run is recorded: import, verify and the live sync in the target's database (they hold
rights there, and after the cut-over it is the application's, whose admin shows them); export in
the application's database (``MONGODB_URI``), never in the source it reads unless that is the
application's database.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from pymongo import monitoring
from pymongo.database import Database

from migration_tools.models import MigrationRun
from studymaster.commands import (
    OperatorCommand,
    cannot_run,
    client_for,
    command_failure,
    interrupted,
    refuse,
)
from studymaster.db import application_database
from studymaster.errors import (
    EXIT_CANNOT_RUN,
    EXIT_INTERRUPTED,
    EXIT_REFUSED,
    classify,
    database_error_cause,
)
from studymaster.mongo import LOOPBACK_HOSTS, parse_uri, redact, split_host

__all__ = [
    "AUDIT_COLLECTION",
    "EXIT_CANNOT_RUN",
    "EXIT_INTERRUPTED",
    "EXIT_REFUSED",
    "Audit",
    "MigrationCommand",
    "application_audit_location",
    "application_database",
    "cannot_run",
    "client_for",
    "command_failure",
    "interrupted",
    "named_source",
    "named_target",
    "named_uri",
    "paced_client",
    "refuse",
    "same_database",
    "server_key",
    "where",
]

AUDIT_COLLECTION = MigrationRun._meta.db_table
STATUS_BY_EXIT_CODE = {
    0: MigrationRun.Status.OK,
    EXIT_REFUSED: MigrationRun.Status.REFUSED,
    EXIT_INTERRUPTED: MigrationRun.Status.INTERRUPTED,
}


class MigrationCommand(OperatorCommand):
    """The base of the migration commands: no system checks, and the pace of a shared tier."""

    # The checks load every URLconf and app; a migration run needs none of it (~0.2 s a run).
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--max-ops-per-second",
            type=float,
            help=f"At most this many operations a second to the server (0: no limit). Default: "
            f"{SHARED_TIER_PACE:g} to an Atlas host (*.mongodb.net), whose free and shared tiers allow "
            "100; no limit elsewhere.",
        )


# Atlas's free tier (M0) allows 100 operations a second, M2 200, M5 and Flex 500; a client cannot
# tell them from a dedicated cluster before it is throttled, so every Atlas host gets M0's pace
# with a margin. It costs a dedicated cluster next to nothing: each operation carries up to
# 10,000 documents or 8 MB.
SHARED_TIER_PACE = 90.0
ATLAS_DOMAIN = ".mongodb.net"


def pace_for(uri: str, max_ops_per_second: float | None) -> float | None:
    """Operations a second allowed to ``uri``'s server: the option when given (0: none), else
    SHARED_TIER_PACE for an Atlas host and no limit elsewhere."""
    if max_ops_per_second is not None:
        return max_ops_per_second or None
    try:
        hosts = parse_uri(uri).hosts
    except ImproperlyConfigured:
        return None  # client_for names the malformed URI
    atlas = any(split_host(host)[0].lower().endswith(ATLAS_DOMAIN) for host in hosts)
    return SHARED_TIER_PACE if atlas else None


class OperationPacer(monitoring.CommandListener):
    """Holds each command a client sends, before it is sent, so that no more than ``per_second``
    leave in any second, from every thread together (PyMongo tells a CommandListener of a
    command in the sending thread, just before the bytes go)."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def started(self, event) -> None:
        with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + self.interval
        if wait > 0:
            time.sleep(wait)

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


def paced_client(uri: str, *, name: str, max_ops_per_second: float | None = None):
    """client_for(uri), paced as :func:`pace_for` says."""
    pace = pace_for(uri, max_ops_per_second)
    if pace is None:
        return client_for(uri, name=name)
    return client_for(uri, name=name, event_listeners=[OperationPacer(pace)])


def named_uri(given: str | None, *, option: str, variable: str, role: str, command: str) -> tuple[str, str]:
    """The URI of a side that must be named, and the name it came by: ``option``, else ``variable``.

    Never MONGODB_URI: a migration command must not read or write whatever the application points
    at because something else was forgotten. CommandError (exit 2) when neither is set, or when the
    URI is malformed (the message names where it came from).
    """
    uri, name = (given, option) if given else (getattr(settings, variable, ""), variable)
    if not uri:
        raise cannot_run(
            f"No {role}: set {variable} or pass {option}. {command} never falls back to MONGODB_URI."
        )
    try:
        parse_uri(uri, name=name)
    except ImproperlyConfigured as exc:
        raise cannot_run(str(exc)) from None
    return uri, name


def named_source(given: str | None, *, option: str, command: str) -> tuple[str, str]:
    """The source's URI: ``option``, else LOCAL_MONGODB_URI (see :func:`named_uri`)."""
    return named_uri(given, option=option, variable="LOCAL_MONGODB_URI", role="source", command=command)


def named_target(given: str | None, *, option: str, command: str) -> tuple[str, str]:
    """The target's URI: ``option``, else ATLAS_MONGODB_URI (see :func:`named_uri`)."""
    return named_uri(given, option=option, variable="ATLAS_MONGODB_URI", role="target", command=command)


def server_key(uri: str) -> frozenset[str]:
    """The hosts of a URI, normalised, to tell whether two URIs reach the same server.

    ``localhost``, ``127.0.0.1`` and ``[::1]`` are one host, the default port is 27017, and
    options (``directConnection``, ``tls``...) do not count. Empty for a malformed URI
    (client_for reports that one with its name).
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


def same_database(uri: str, db_name: str, other_uri: str, other_db_name: str) -> bool:
    """Whether two (URI, database) pairs name the same database on the same server."""
    key = server_key(uri)
    return bool(key) and db_name == other_db_name and key == server_key(other_uri)


def where(uri: str, db_name: str, name: str) -> str:
    """``database <db> on <redacted URI> (<where the URI came from>)``: how every command names a side."""
    return f"database {db_name} on {redact(uri)} ({name})"


def _reason(exc: BaseException) -> str:
    """Why the audit could not be written, in one line (the ORM's DatabaseError has no text of its own)."""
    cause = database_error_cause(exc)
    if cause is not None:
        problem = classify(cause)
        return f"{problem.kind}: {problem.message}"
    return f"{type(exc).__name__}: {exc}"


@dataclass
class Audit:
    """The MigrationRun record of one command run; a failure to write it warns, with its reason.

    The library function of each command fills ``source``, ``target``, ``database``, ``counts``
    and ``checksums`` and runs its work inside :meth:`recording`, in the database where the run
    belongs (see the module docstring).
    """

    command: str
    source: str = ""
    target: str = ""
    database: str = ""
    warn: Callable[[str], object] = print
    counts: dict = field(default_factory=dict)
    checksums: dict = field(default_factory=dict)
    location: str = ""  # where the record went, for the warnings
    _collection: object = None
    _record_id: object = None

    @contextlib.contextmanager
    def recording(self, database: Database | Callable[[], Database], *, location: str = ""):
        """Record the run in ``database`` (or the one a callable returns) around the body.

        The record's status and exit code are the ones the command ends with
        (:func:`command_failure`): Ctrl-C is ``interrupted`` (130) and propagates as it is; any
        other exception is re-raised as its CommandError.
        """
        self.location = location
        self._begin(database)
        try:
            yield self
        except KeyboardInterrupt:
            self._finish(EXIT_INTERRUPTED, "interrupted")
            raise
        except BaseException as exc:
            error = command_failure(exc)
            self._finish(error.returncode, str(error))
            if error is exc:
                raise
            raise error from exc
        else:
            self._finish(0, "")

    def _begin(self, database) -> None:
        try:
            if callable(database) and not isinstance(database, Database):
                database = database()
            self._collection = database[AUDIT_COLLECTION]
            self._record_id = self._collection.insert_one(
                {
                    "command": self.command,
                    "status": MigrationRun.Status.RUNNING.value,
                    "exit_code": None,
                    "started_at": timezone.now(),
                    "finished_at": None,
                    "source": redact(self.source),
                    "target": redact(self.target),
                    "database": self.database,
                    "counts": {},
                    "checksums": {},
                    "message": "",
                }
            ).inserted_id
        except Exception as exc:  # the audit must never stop the migration itself
            self._collection = None
            self._warn("was not written", exc)

    def _finish(self, exit_code: int, message: str) -> None:
        if self._collection is None:
            return
        status = STATUS_BY_EXIT_CODE.get(exit_code, MigrationRun.Status.FAILED)
        try:
            self._collection.update_one(
                {"_id": self._record_id},
                {
                    "$set": {
                        "status": status.value,
                        "exit_code": exit_code,
                        "finished_at": timezone.now(),
                        "database": self.database,
                        "counts": self.counts,
                        "checksums": self.checksums,
                        "message": redact(message)[:2000],
                    }
                },
            )
        except Exception as exc:
            self._warn("was not completed", exc)

    def _warn(self, what: str, exc: BaseException) -> None:
        place = f" in {self.location}" if self.location else ""
        self.warn(f"warning: the audit record (MigrationRun){place} {what}: {redact(_reason(exc))[:300]}")


def application_audit_location() -> str:
    """How export names the application's database, where it records its runs."""
    return where(settings.MONGODB_URI, settings.MONGODB_DB_NAME, "MONGODB_URI")
