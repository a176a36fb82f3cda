"""The source side of a live sync: its replica-set check, its clock, and its change stream.

The stream watches the whole source database, with the post-image of each update
(``fullDocument: updateLookup``) and, on MongoDB 6.0 and later, the expanded events that
carry collection and index changes. Only the data collections' events come through
(``studymaster.tools_collections``: never the tools' own ``migration_tools_*`` nor
``system.*``), filtered on the server. Events are read as raw BSON, so documents reach the target
byte for byte.

A reader thread drains the stream into a bounded queue as fast as the source delivers, so
the lag in events is the queue's length. After each poll that found nothing new it queues a
:class:`CaughtUp` marker with the source's majority operation time read just before the
poll: every event up to that time is then in the queue ahead of the marker.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bson import Timestamp
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from migration_tools.bsonfiles import RAW
from studymaster.tools_collections import NOT_DATA_COLLECTION_PATTERN

HISTORY_LOST = 286  # ChangeStreamHistoryLost
NOT_A_REPLICA_SET = 40573  # "The $changeStream stage is only supported on replica sets"
QUEUE_EVENTS = 20000
AWAIT_MS = 500
# A cut-over waits for the stream to prove it has read up to a moment: it polls more often. (At
# 100 ms a resumed SecantusDB stream was seen to block in getMore for over a minute; 200 ms did not.)
CUTOVER_AWAIT_MS = 200


class StandaloneSource(Exception):
    """The source is not a replica set member: it has no oplog, hence no change stream."""


class HistoryLost(Exception):
    """The point to resume from is no longer in the source's oplog."""


def check_replica_set(client) -> dict:
    """The source's ``hello``; raises StandaloneSource for a standalone server."""
    hello = client.admin.command("hello")
    if not hello.get("setName") and hello.get("msg") != "isdbgrid":
        raise StandaloneSource()
    return hello


def expanded_events_supported(client) -> bool:
    """MongoDB 6.0 added the events of collection and index changes (showExpandedEvents)."""
    version = client.server_info().get("versionArray") or [0]
    return tuple(version[:2]) >= (6, 0)


@dataclass
class SourceClock:
    """The source's time as last read: its majority operation time and its wall clock."""

    operation_time: Timestamp | None = None
    wall: datetime | None = None
    read_at: float = 0.0

    def now(self) -> datetime:
        """The source's wall clock now, extrapolated from the last reading."""
        if self.wall is None:
            return datetime.now(UTC)
        return self.wall + timedelta(seconds=time.monotonic() - self.read_at)


def read_clock(client) -> SourceClock:
    """``hello``: the majority-committed operation time (else operationTime) and localTime."""
    hello = client.admin.command("hello")
    majority = ((hello.get("lastWrite") or {}).get("majorityOpTime") or {}).get("ts")
    wall = hello.get("localTime")
    if isinstance(wall, datetime) and wall.tzinfo is None:
        wall = wall.replace(tzinfo=UTC)
    return SourceClock(majority or hello.get("operationTime"), wall, time.monotonic())


def oplog_start(client) -> Timestamp | None:
    """The oldest entry's time in the source's oplog, or None when it cannot be read.

    Used to notice early that the resume point has gone (a long copy), and because SecantusDB
    does not fail an open change stream whose position the oplog has rolled past: it skips
    ahead silently (pinned in studymaster/tests/test_deviations.py).
    """
    try:
        entry = client.local["oplog.rs"].find_one({}, {"ts": 1}, sort=[("$natural", 1)])
    except PyMongoError:
        return None
    return entry.get("ts") if entry else None


def history_is_lost(client, position: Timestamp | None) -> bool:
    start = oplog_start(client) if position is not None else None
    return start is not None and position < start


def open_stream(db, *, token=None, expanded: bool, session=None, await_ms: int = AWAIT_MS):
    """A change stream on the whole database, raw, from ``token`` (or from now).

    Raises StandaloneSource or HistoryLost; other PyMongo errors propagate.
    """
    pipeline = [{"$match": {"ns.coll": {"$not": {"$regex": NOT_DATA_COLLECTION_PATTERN}}}}]
    options = {"full_document": "updateLookup", "max_await_time_ms": await_ms, "batch_size": 1000}
    if expanded:
        options["show_expanded_events"] = True
    if token is not None:
        options["resume_after"] = token
    try:
        return db.with_options(codec_options=RAW).watch(pipeline, session=session, **options)
    except OperationFailure as exc:
        raise _translated(exc) from None


def _translated(exc: OperationFailure) -> Exception:
    if exc.code == HISTORY_LOST:
        return HistoryLost(str(exc))
    if exc.code == NOT_A_REPLICA_SET:
        return StandaloneSource()
    return exc


def record_start(db, *, expanded: bool) -> tuple[object, Timestamp | None]:
    """Open the stream from now and return its starting point: (resume token, operation time).

    The token is the stream's first postBatchResumeToken: resuming after it yields every
    change made after this moment.
    """
    with db.client.start_session() as session:
        stream = open_stream(db, expanded=expanded, session=session)
        try:
            return stream.resume_token, session.operation_time
        finally:
            stream.close()


@dataclass
class CaughtUp:
    """A poll found nothing new: every change visible before it is queued ahead of this marker.

    ``operation_time`` is the source's, read just before that poll (None when not read).
    """

    operation_time: Timestamp | None


@dataclass
class ReaderFailed:
    error: BaseException


class StreamReader:
    """A thread that reads the change stream into ``self.events`` until closed."""

    def __init__(self, db, *, token, expanded: bool, clock_client, await_ms: int = AWAIT_MS) -> None:
        self.db, self.token, self.expanded, self.clock_client = db, token, expanded, clock_client
        self.await_ms = await_ms
        self.events: queue.Queue = queue.Queue(maxsize=QUEUE_EVENTS)
        self.clock = SourceClock()
        # How far the open cursor has read: the last event's time, or the source's time before a
        # poll that found nothing. None until then (the server checked the resume point itself).
        self.position: Timestamp | None = None
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._stream = None

    def start(self) -> None:
        # Opened here, in the caller's thread, so that a refusal (history lost) raises at once.
        self._stream = open_stream(self.db, token=self.token, expanded=self.expanded, await_ms=self.await_ms)
        self.clock = read_clock(self.clock_client)
        self._thread = threading.Thread(target=self._run, name="sync-reader", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._closing.is_set():
            try:
                self.events.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        idle = True
        try:
            while not self._closing.is_set():
                clock = self._read_clock() if idle else None
                if clock is not None:
                    self.clock = clock
                event = self._stream.try_next()
                if event is None:
                    # Only a poll that began after the clock was read proves everything up to it read.
                    proven = clock.operation_time if clock is not None else None
                    if proven is not None:
                        self.position = max(self.position or proven, proven)
                    if not self._put(CaughtUp(proven)):
                        return
                    idle = True
                    continue
                idle = False
                self.position = event["clusterTime"]
                if not self._put(event):
                    return
        except OperationFailure as exc:
            self._put(ReaderFailed(_translated(exc)))
        except BaseException as exc:  # handed to the applying thread, which reports it
            self._put(ReaderFailed(exc))

    def _read_clock(self) -> SourceClock | None:
        """The source's clock, or None after a connection error (the pool was reset under load:
        the next idle poll reads it again; the stream itself resumes on such errors)."""
        try:
            return read_clock(self.clock_client)
        except ConnectionFailure:
            return None

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=AWAIT_MS / 1000 + 5)
        if self._stream is not None:
            with contextlib.suppress(PyMongoError):
                self._stream.close()
