"""Fixed-window request counters kept in MongoDB, shared by every process and instance.

django-mongodb-backend 5.2 ships no cache backend, and Django's database cache does not
run on it, so DRF's cache-based throttles have nowhere to keep their counts. This store
keeps one small JSON-like document per key and window::

    {"_id": ObjectId(<first 12 bytes of the window key's SHA-256>),
     "key": "<key>:<window seconds>:<window start>", "count": 7, "expires_at": <date>}

Each hit is one ``find_one_and_update`` with ``$inc`` and ``upsert`` on that ``_id``: atomic
on the server, so concurrent requests in any number of processes never lose a count (the rare
loser of a race to insert a window retries as an update). The ``_id`` is derived from the key
so that every hit is a lookup in the ``_id`` index, on any server: the unique index the
backend builds on ``key`` is partial (``{key: {$type: "string"}}``), and a plain equality on
``key`` does not select it, on MongoDB (django-mongodb-backend PR #543, not in 5.2.4) or on
the embedded server, so each hit scanned every live counter. A TTL index on ``expires_at``
lets MongoDB delete finished windows by itself; correctness does not depend on it, because
the window start is part of the key.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Rate:
    limit: int
    window_seconds: int


def parse_rate(rate: str) -> Rate:
    """Parse DRF's rate syntax, ``"20/min"``, ``"5/second"``, ``"100/hour"``, ``"1000/day"``.

    Raises ValueError with a message naming the accepted form.
    """
    number, _, period = (rate or "").partition("/")
    try:
        limit = int(number)
    except ValueError:
        limit = 0
    window = PERIODS.get(period.strip()[:1].lower()) if period.strip() else None
    if limit <= 0 or window is None:
        raise ValueError(f"{rate!r} is not a rate such as 20/min (a positive count / s, min, hour or day)")
    return Rate(limit=limit, window_seconds=window)


@dataclass(frozen=True)
class Hit:
    count: int
    retry_after_seconds: int


class FixedWindowCounter:
    """Counts hits per key in fixed windows; ``on_operation`` is told of each database call.

    ``collection`` needs a unique index on ``key`` and a TTL index on ``expires_at``
    (:func:`ensure_indexes`; for the throttles, accounts migrations 0003 and 0004).
    """

    def __init__(self, collection: Collection, *, on_operation: Callable[[str], None] | None = None):
        self.collection = collection
        self.on_operation = on_operation or (lambda description: None)

    def hit(self, key: str, *, window_seconds: int, now: float | None = None) -> Hit:
        """Count one hit of ``key`` in the current window and return the window's total so far."""
        now = time.time() if now is None else now
        window_start = int(now // window_seconds) * window_seconds
        window_end = window_start + window_seconds
        window_key = f"{key}:{window_seconds}:{window_start}"
        update = {
            "$inc": {"count": 1},
            "$setOnInsert": {"key": window_key, "expires_at": datetime.fromtimestamp(window_end, tz=UTC)},
        }
        by_id = {"_id": window_key_id(window_key)}
        document = self._count(by_id, window_key, update)
        if document is None:
            # The embedded server sometimes answers a racing upsert with no document although
            # it applied the $inc (pinned in accounts/tests/test_throttles.py); MongoDB never
            # does. Retrying would count twice, so read the total, which includes this hit.
            self.on_operation(f"db.{self.collection.name}.find_one({window_key!r})")
            document = self.collection.find_one(by_id)
        return Hit(count=document["count"], retry_after_seconds=max(1, math.ceil(window_end - now)))

    def _count(self, by_id: dict, window_key: str, update: dict) -> dict | None:
        try:
            return self._find_and_update(by_id, update, window_key)
        except DuplicateKeyError:
            pass  # two first hits raced to insert the window: the loser's retry finds it
        try:
            return self._find_and_update(by_id, update, window_key)
        except DuplicateKeyError:
            # The unique key is held by a window counted before its _id was derived from the
            # key (for at most one window after upgrading): count there.
            return self._find_and_update(
                {"key": window_key}, {"$inc": update["$inc"]}, window_key, upsert=False
            )

    def _find_and_update(self, query: dict, update: dict, window_key: str, *, upsert: bool = True):
        self.on_operation(f"db.{self.collection.name}.find_one_and_update({window_key!r})")
        return self.collection.find_one_and_update(
            query, update, upsert=upsert, return_document=ReturnDocument.AFTER
        )

    def reset(self, key: str) -> int:
        """Forget every window of ``key`` (lifting its limit at once); returns how many there were.
        Rare (an operator's ``throttle_lift``): a regular expression selects no index, so this
        reads every live counter."""
        self.on_operation(f"db.{self.collection.name}.delete_many({key!r})")
        return self.collection.delete_many({"key": {"$regex": f"^{re.escape(key)}:"}}).deleted_count


def window_key_id(window_key: str) -> ObjectId:
    """The ``_id`` of a window's counter: the first 12 bytes of its key's SHA-256 (a collision
    among the few thousand live windows is about one in 10^22)."""
    return ObjectId(hashlib.sha256(window_key.encode()).digest()[:12])


def ensure_indexes(collection: Collection) -> None:
    """Create the indexes the counter relies on, for a collection that no migration manages
    (the throttles' collection gets them from accounts migrations 0003 and 0004)."""
    collection.create_index("key", unique=True, name="key_unique")
    collection.create_index("expires_at", expireAfterSeconds=0, name="expires_at_ttl")
