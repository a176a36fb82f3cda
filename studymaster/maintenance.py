"""Maintenance mode: one flag in the application's database, which every process follows.

Levels:

- ``off``: normal.
- ``on``: every change a user makes is frozen (API and admin writes answer 503), but logging in,
  refreshing a token and logging out go through: for a freeze of minutes, a cut-over.
- ``hard``: those are refused too, so that nothing at all is written: for the seconds of a live
  cut-over's final drain.

The flag is one document in ``migration_tools_maintenance``, one of the migration tools' own
collections, so it never travels to a target with the data::

    {"_id": "maintenance", "level": "on", "set_by": "alice@web-1", "set_at": <date>}

:func:`maintenance_get` and :func:`maintenance_set` take a PyMongo ``Database``: the live sync
sets the source application's flag through its own client. The application itself reads its own
database's flag through :func:`current_state`, cached per process: a process reads it at most
once every CACHE_SECONDS, so a request costs no operation, and every request that starts
PROPAGATION_SECONDS after :func:`maintenance_set` returned sees the new level, in every process
(the cache is stamped when its read starts, so a slow read cannot make it older). Requests that
passed the check earlier may still be finishing; gunicorn's timeout bounds them.

``MAINTENANCE_MODE=1`` in the environment is a one-way override: it forces at least ``on`` in the
processes that have it; nothing forces the flag off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pymongo
from django.conf import settings
from django.utils import timezone
from pymongo.database import Database

from studymaster.db import application_database
from studymaster.tools_collections import TOOLS_COLLECTION_PREFIX

logger = logging.getLogger("studymaster.maintenance")

LEVELS = ("off", "on", "hard")
MAINTENANCE_COLLECTION = f"{TOOLS_COLLECTION_PREFIX}maintenance"
FLAG_ID = "maintenance"
# How old a process's copy of the flag may be.
CACHE_SECONDS = 1.0
# A read of the flag that takes longer keeps the last level known: with the database down, a
# write request must not wait a whole server-selection timeout for the flag before its own.
READ_TIMEOUT_SECONDS = 0.5
# The bound the live sync waits on: every request that starts this long after maintenance_set
# returned sees the new level, in every process. Twice the cache's age, for clocks and slow reads.
PROPAGATION_SECONDS = 2.0


@dataclass(frozen=True)
class MaintenanceState:
    """A level, who set it and when (empty for a flag never set), and whether the environment forces it."""

    level: str = "off"
    set_by: str = ""
    set_at: datetime | None = None
    forced_by_environment: bool = False

    @property
    def active(self) -> bool:
        return self.level != "off"

    def origin(self) -> str:
        """Who set it and when, and whether the environment forces it: ``set by alice@web-1 at ...``."""
        parts = []
        if self.set_by or self.set_at:
            when = f" at {self.set_at:%Y-%m-%d %H:%M:%S} UTC" if self.set_at else ""
            parts.append(f"set by {self.set_by or 'unknown'}{when}")
        if self.forced_by_environment:
            parts.append("MAINTENANCE_MODE=1 in this process's environment forces at least on")
        return "; ".join(parts) or "never set"

    def describe(self) -> str:
        """``on (set by alice@web-1 at 2026-11-29 23:30:00 UTC)``, for people."""
        return f"{self.level} ({self.origin()})"


def _state(document: dict | None) -> MaintenanceState:
    if not document or document.get("level") not in LEVELS:
        return MaintenanceState()
    set_at = document.get("set_at")
    if set_at is not None and timezone.is_naive(set_at):
        set_at = set_at.replace(tzinfo=UTC)
    return MaintenanceState(level=document["level"], set_by=document.get("set_by", ""), set_at=set_at)


def maintenance_get(db: Database) -> MaintenanceState:
    """The flag stored in ``db``, read now (no cache). PyMongo errors propagate."""
    return _state(db[MAINTENANCE_COLLECTION].find_one({"_id": FLAG_ID}))


def maintenance_set(
    db: Database, *, level: str, set_by: str, now: datetime | None = None
) -> MaintenanceState:
    """Store ``level`` in ``db``'s flag, with who and when; return the stored state.

    Acknowledged by a majority (the client's write concern) before it returns, so every process
    sees it within PROPAGATION_SECONDS. ValueError for an unknown level; PyMongo errors propagate.
    """
    if level not in LEVELS:
        raise ValueError(f"{level!r} is not a maintenance level; use one of {', '.join(LEVELS)}.")
    document = {"_id": FLAG_ID, "level": level, "set_by": set_by, "set_at": now or timezone.now()}
    db[MAINTENANCE_COLLECTION].replace_one({"_id": FLAG_ID}, document, upsert=True)
    return _state(document)


def effective(stored: MaintenanceState, *, forced: bool) -> MaintenanceState:
    """The state a process acts on: ``forced`` (MAINTENANCE_MODE=1) makes ``off`` into ``on``."""
    if not forced:
        return stored
    return replace(stored, level="on" if stored.level == "off" else stored.level, forced_by_environment=True)


class MaintenanceCache:
    """One process's copy of a flag, read again once it is CACHE_SECONDS old.

    A read that fails (or, for the application's flag, takes more than READ_TIMEOUT_SECONDS) keeps
    the last level known (``off`` before the first) and is logged; the process tries again once
    the copy is CACHE_SECONDS old.
    """

    def __init__(self, read: Callable[[], MaintenanceState], *, clock: Callable[[], float] = time.monotonic):
        self._read = read
        self._clock = clock
        self._lock = threading.Lock()
        self._state = MaintenanceState()
        self._read_at: float | None = None

    def get(self) -> MaintenanceState:
        started = self._clock()
        if self._read_at is not None and started - self._read_at < CACHE_SECONDS:
            return self._state
        with self._lock:
            if self._read_at is not None and self._clock() - self._read_at < CACHE_SECONDS:
                return self._state  # another thread read it meanwhile
            try:
                self._state = self._read()
            except Exception as exc:  # an unreadable flag must not break every request
                logger.warning(
                    "maintenance flag not read (%s); keeping %s", type(exc).__name__, self._state.level
                )
            self._read_at = started
        return self._state

    def clear(self) -> None:
        """Forget the copy: the next get() reads the flag (tests, and the command that sets it)."""
        self._read_at = None


def _read_application_flag() -> MaintenanceState:
    # Not through mongo_call: this read is the process's, once a second, not any request's own
    # operation, so the endpoints' pinned query budgets do not count it (docs/api.md).
    with pymongo.timeout(READ_TIMEOUT_SECONDS):
        return maintenance_get(application_database())


_application_cache = MaintenanceCache(_read_application_flag)


def current_state() -> MaintenanceState:
    """The maintenance state this process acts on: the application's flag (cached) and MAINTENANCE_MODE."""
    return effective(_application_cache.get(), forced=getattr(settings, "MAINTENANCE_MODE", False))


def forget_cached_state() -> None:
    """Make the next current_state() read the flag again."""
    _application_cache.clear()
