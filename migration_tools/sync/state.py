"""What a live sync keeps on the target: its lease and its state, in one collection of its own.

The collection, ``migration_tools_syncstate``, lives in the target database beside the data,
so a rerun on any host finds where the last run stopped. Like every ``migration_tools_*``
collection it is never copied, snapshotted or compared. It holds two documents:

``{_id: "lease"}``
    who runs the sync: ``holder`` (``host``, ``pid``, ``run_id``, ``process_started``),
    ``acquired_at``, ``renewed_at``, ``expires_at`` (the target server's clock), ``released_at``.
``{_id: "state"}``
    ``owner`` (the run_id of the lease holder: every save is conditional on it, so a run that
    lost its lease cannot overwrite its successor's state), ``source`` (``uri`` redacted,
    ``hosts``, ``db``), ``target_db``, ``start`` (``token``: the change stream's resume token
    recorded before the copy, ``operation_time``, ``at``), ``copy`` (``done`` and one entry per
    collection), ``stream`` (``token`` after the last applied batch, ``applied_through``,
    ``events`` by kind), ``refresh`` (documents to re-read from the source), ``verify`` (the live
    verification's progress, its recheck set and the differences it found).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo.errors import DuplicateKeyError, PyMongoError

from migration_tools.bsonfiles import DECODE
from studymaster.retry import retry_idempotent

STATE_COLLECTION = "migration_tools_syncstate"
LEASE_ID = "lease"
STATE_ID = "state"
LEASE_SECONDS = 15
RENEW_SECONDS = 4


class LeaseHeld(Exception):
    """Another live run holds the target database's lease."""

    def __init__(self, holder: dict, renewed_ago: float, expires_in: float) -> None:
        self.holder, self.renewed_ago, self.expires_in = holder, renewed_ago, expires_in
        super().__init__(
            f"host {holder.get('host')}, process {holder.get('pid')} (renewed {renewed_ago:.0f}s ago, "
            f"expires in {expires_in:.0f}s if it stops renewing)"
        )


class LeaseLost(Exception):
    """This run no longer holds the lease: another run took over, or renewing failed too long."""


def server_now(db) -> datetime:
    """The target server's clock (``hello``'s localTime), so hosts with skewed clocks agree."""
    local = db.client.admin.command("hello").get("localTime")
    if isinstance(local, datetime):
        return local if local.tzinfo else local.replace(tzinfo=UTC)
    return datetime.now(UTC)


def _process_started(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), to tell a reused pid."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19] if len(fields) > 19 else None


def process_alive(pid: int, started: str | None) -> bool:
    """Whether ``pid`` on this host is still the process that took the lease (zombies are gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    try:
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except (OSError, IndexError):
        return True
    return started is None or _process_started(pid) in (None, started)


@dataclass
class Lease:
    """One run per target database: a lease renewed every few seconds by a background thread."""

    db: object  # the target database
    run_id: str = ""
    taken_over: dict | None = None

    def __post_init__(self) -> None:
        self.collection = self.db.get_collection(STATE_COLLECTION, codec_options=DECODE)
        self.run_id = self.run_id or uuid.uuid4().hex
        self.holder = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "run_id": self.run_id,
            "process_started": _process_started(os.getpid()),
        }
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the lease, or raise LeaseHeld naming the live holder.

        A lease is free when it expired, was released, or its holder is a process of this
        host that no longer exists (a rerun after SIGKILL takes over at once).
        """
        for _ in range(5):
            now = server_now(self.db)
            fresh = {
                "holder": self.holder,
                "acquired_at": now,
                "renewed_at": now,
                "expires_at": now + timedelta(seconds=LEASE_SECONDS),
                "released_at": None,
            }
            current = self.collection.find_one({"_id": LEASE_ID})
            if current is None:
                try:
                    self.collection.insert_one({"_id": LEASE_ID, **fresh})
                    return
                except DuplicateKeyError:
                    continue
            holder = current.get("holder") or {}
            expired = current["expires_at"] <= now
            gone = holder.get("host") == self.holder["host"] and not process_alive(
                holder.get("pid", 0), holder.get("process_started")
            )
            if not (expired or gone):
                raise LeaseHeld(
                    holder,
                    (now - current["renewed_at"]).total_seconds(),
                    (current["expires_at"] - now).total_seconds(),
                )
            taken = self.collection.update_one(
                {"_id": LEASE_ID, "holder.run_id": holder.get("run_id"), "renewed_at": current["renewed_at"]},
                {"$set": fresh},
            )
            if taken.modified_count:
                if not current.get("released_at"):
                    self.taken_over = holder
                return
        raise LeaseHeld(holder, 0.0, float(LEASE_SECONDS))

    def renew(self) -> None:
        """Extend the lease; raises LeaseLost when another run holds it now."""
        now = server_now(self.db)
        renewed = self.collection.update_one(
            {"_id": LEASE_ID, "holder.run_id": self.run_id},
            {"$set": {"renewed_at": now, "expires_at": now + timedelta(seconds=LEASE_SECONDS)}},
        )
        if not renewed.matched_count:
            raise LeaseLost("another run took the lease over")

    def start_renewing(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, name="sync-lease", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        last_success = time.monotonic()
        while not self._stop.wait(RENEW_SECONDS):
            try:
                self.renew()
                last_success = time.monotonic()
            except LeaseLost:
                self.lost.set()
                return
            except PyMongoError:
                # Past the expiry another run may have taken over: stop writing then.
                if time.monotonic() - last_success > LEASE_SECONDS - RENEW_SECONDS:
                    self.lost.set()
                    return

    def release(self) -> None:
        """Stop renewing and free the lease at once (the next run need not wait for it to expire)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=RENEW_SECONDS + 1)
        if self.lost.is_set():
            return
        with contextlib.suppress(PyMongoError):
            now = server_now(self.db)
            self.collection.update_one(
                {"_id": LEASE_ID, "holder.run_id": self.run_id},
                {"$set": {"expires_at": now, "released_at": now}},
            )


@retry_idempotent(operation="sync.save_state")
def _update(collection, query: dict, update: dict):
    return collection.update_one(query, update)


class SyncState:
    """The ``{_id: "state"}`` document: read once, saved whole sections at a time, fenced by owner."""

    def __init__(self, db, run_id: str) -> None:
        self.collection = db.get_collection(STATE_COLLECTION, codec_options=DECODE)
        self.run_id = run_id
        self.doc: dict | None = None

    def load(self) -> dict | None:
        self.doc = self.collection.find_one({"_id": STATE_ID})
        return self.doc

    def claim(self) -> None:
        """Make this run the owner of an existing state (after the lease was acquired)."""
        self.collection.update_one({"_id": STATE_ID}, {"$set": {"owner": self.run_id}})
        if self.doc is not None:
            self.doc["owner"] = self.run_id

    def create(self, fields: dict) -> None:
        now = datetime.now(UTC)
        self.doc = {"_id": STATE_ID, "owner": self.run_id, "created_at": now, "updated_at": now, **fields}
        self.collection.replace_one({"_id": STATE_ID}, self.doc, upsert=True)

    def clear(self) -> None:
        self.collection.delete_one({"_id": STATE_ID})
        self.doc = None

    def save(self, **sections) -> None:
        """Write ``sections`` (top-level fields) in one update; raises LeaseLost if not the owner."""
        sections["updated_at"] = datetime.now(UTC)
        saved = _update(self.collection, {"_id": STATE_ID, "owner": self.run_id}, {"$set": sections})
        if not saved.matched_count:
            raise LeaseLost("the sync state now belongs to another run")
        self.doc.update(sections)
