"""The game's invariants, defined once, and the readers that gather what they are checked on.

- **Points equal the ledger**: each user's ``points`` is the sum of the ``amount`` of their
  ``PointsEntry`` rows (0 without any).
- **No orphans**: every per-user document (a ledger entry, an earned badge, an achievement, a
  study session) belongs to a user that exists.
- **A copy keeps each user's documents**: the same number per user on both sides.

The invariants are pure functions over per-user counts (:func:`points_off_ledger`,
:func:`orphans`, :func:`count_differences`). The counts come from a database
(:func:`ledger_check`, two reads) or from raw BSON as it streams past (:class:`RawUserFields`
and :class:`UserTally`: export_local must not scan the database twice). Both name the fields
through the models (``PointsEntry._meta.get_field("user").column``...), never by hand.

Per-user collections of other apps (study sessions) are passed in as models by the caller:
this app does not import the apps above it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import bson
from bson import ObjectId
from bson.codec_options import CodecOptions, DatetimeConversion
from django.contrib.auth import get_user_model
from django.db.models import Model

from gamification.models import PointsEntry

K = TypeVar("K")
# Decodes any document a dump can hold, dates outside Python's range included.
DECODE = CodecOptions(tz_aware=True, datetime_conversion=DatetimeConversion.DATETIME_AUTO)
SHOWN_USERS = 3


# -- the invariants --------------------------------------------------------------------------------
def points_off_ledger(points: Mapping[K, int], ledger: Mapping[K, int]) -> list[K]:
    """The users of ``points`` (user -> points) whose points differ from their ``ledger`` sum."""
    return [user for user, total in points.items() if ledger.get(user, 0) != total]


def orphans(counts: Mapping[K, int], users: Collection[K]) -> int:
    """How many of the documents counted per user in ``counts`` belong to no user in ``users``."""
    return sum(number for user, number in counts.items() if user not in users)


def count_differences(source: Mapping[K, int], target: Mapping[K, int]) -> list[K]:
    """The users with another number of documents in ``target`` than in ``source``, sorted."""
    return sorted(user for user in set(source) | set(target) if source.get(user, 0) != target.get(user, 0))


# -- the names, from the models ---------------------------------------------------------------------
def users_collection() -> str:
    return get_user_model()._meta.db_table


def ledger_collection() -> str:
    return PointsEntry._meta.db_table


def user_column(model: type[Model]) -> str:
    """The field that holds a per-user model's user: ``user_id``."""
    return model._meta.get_field("user").column


def _points_column() -> str:
    return get_user_model()._meta.get_field("points").column


def _amount_column() -> str:
    return PointsEntry._meta.get_field("amount").column


# -- from a database ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LedgerCheck:
    users: int  # how many users were checked
    off_ledger: list[str]  # str(_id) of those whose points differ from their ledger


def ledger_check(db, *, user_ids: Iterable | None = None) -> LedgerCheck:
    """Points against the ledger in ``db`` (a PyMongo database): one aggregation, one find.

    ``user_ids`` limits the check to those users. Users are named by ``str(_id)``.
    """
    user_field = user_column(PointsEntry)
    pipeline: list[dict] = []
    user_filter: dict = {}
    if user_ids is not None:
        user_ids = list(user_ids)
        pipeline.append({"$match": {user_field: {"$in": user_ids}}})
        user_filter = {"_id": {"$in": user_ids}}
    pipeline.append({"$group": {"_id": f"${user_field}", "total": {"$sum": f"${_amount_column()}"}}})
    ledger = {str(row["_id"]): row["total"] for row in db[ledger_collection()].aggregate(pipeline)}
    points_field = _points_column()
    points = {
        str(user["_id"]): user.get(points_field) or 0
        for user in db[users_collection()].find(user_filter, {points_field: 1})
    }
    return LedgerCheck(users=len(points), off_ledger=points_off_ledger(points, ledger))


# -- from raw BSON ---------------------------------------------------------------------------------
_OBJECT_ID = b"\x07"
_INT32, _INT64 = b"\x10", b"\x12"
_ID_HEADER = _OBJECT_ID + b"_id\x00"


def user_key(value):
    """A user's ``_id`` as a dictionary key: the 12 bytes of an ObjectId, a document or array by its
    text (they cannot be keys), other values as they are."""
    if isinstance(value, ObjectId):
        return value.binary
    return str(value) if isinstance(value, dict | list) else value


def user_value(key):
    """The ``_id`` a :func:`user_key` stands for."""
    return ObjectId(key) if isinstance(key, bytes) and len(key) == 12 else key


class RawUserFields:
    """Reads the user (and the ledger's amount) of raw BSON documents by the model's field names.

    The fast path reads documents in the layout the ORM writes, checking each field's type and
    name bytes: an ObjectId ``_id`` first, then the user's ObjectId, then the amount as int32 or
    int64. Any other document is decoded. Users are :func:`user_key` keys.
    """

    def __init__(self, user_field: str, amount_field: str | None = None):
        self.user_field = user_field
        self.amount_field = amount_field
        user_header = _OBJECT_ID + user_field.encode() + b"\x00"
        # After the document's length (4 bytes), the _id's header and its 12 bytes.
        self._user_header = (4 + len(_ID_HEADER) + 12, user_header)
        self._user_at = 4 + len(_ID_HEADER) + 12 + len(user_header)
        self._amount_headers = None
        if amount_field is not None:
            name = amount_field.encode() + b"\x00"
            self._amount_headers = (_INT32 + name, _INT64 + name)

    def _decoded(self, raw) -> tuple:
        document = bson.decode(bytes(raw), DECODE)
        amount = (document.get(self.amount_field, 0) or 0) if self.amount_field else 0
        return user_key(document.get(self.user_field)), amount

    def users(self, documents: Iterable) -> Iterable:
        """The user key of each raw document."""
        header_at, header = self._user_header
        header_end, user_at = header_at + len(header), self._user_at
        for raw in documents:
            if raw[4:9] == _ID_HEADER and raw[header_at:header_end] == header:
                yield bytes(raw[user_at : user_at + 12])
            else:
                yield self._decoded(raw)[0]

    def users_and_amounts(self, documents: Iterable) -> Iterable[tuple]:
        """(user key, amount) of each raw ledger document."""
        header_at, header = self._user_header
        header_end, user_at = header_at + len(header), self._user_at
        int32_header, int64_header = self._amount_headers
        amount_header_at, amount_header_end = user_at + 12, user_at + 12 + len(int32_header)
        for raw in documents:
            if raw[4:9] == _ID_HEADER and raw[header_at:header_end] == header:
                marker = raw[amount_header_at:amount_header_end]
                if marker == int32_header:
                    amount_end = amount_header_end + 4
                elif marker == int64_header:
                    amount_end = amount_header_end + 8
                else:
                    yield self._decoded(raw)
                    continue
                amount = int.from_bytes(raw[amount_header_end:amount_end], "little", signed=True)
                yield bytes(raw[user_at : user_at + 12]), amount
            else:
                yield self._decoded(raw)

    @classmethod
    def of(cls, model: type[Model]) -> RawUserFields:
        """The reader of a per-user model's documents (with the amount for the ledger)."""
        return cls(user_column(model), _amount_column() if model is PointsEntry else None)


def raw_counts_by_user(model: type[Model], documents: Iterable) -> Counter:
    """Documents per user (``str`` of the user's ``_id``) among raw documents of ``model``."""
    counts = Counter(RawUserFields.of(model).users(documents))
    return Counter({str(user_value(user)): number for user, number in counts.items()})


class UserTally:
    """The counts of the invariants, gathered from raw BSON batches as a collection streams past.

    Users' points, the ledger's sum per user, and the documents per user of the ledger and
    of ``per_user_models``. :meth:`warnings` names what breaks an invariant.
    """

    def __init__(self, per_user_models: Sequence[type[Model]]) -> None:
        self.users_name = users_collection()
        self.ledger_name = ledger_collection()
        self._points_field = _points_column()
        self.readers = {
            model._meta.db_table: RawUserFields.of(model) for model in (PointsEntry, *per_user_models)
        }
        self.users_exported = False
        self.points: dict = {}
        self.per_user: dict[str, Counter] = {}
        self.ledger: Counter = Counter()

    def start(self, name: str) -> None:
        """A collection begins (it may hold no documents)."""
        if name == self.users_name:
            self.users_exported = True
        elif name in self.readers:
            self.per_user[name] = Counter()

    def add(self, name: str, documents: Iterable) -> None:
        """Count the raw ``documents`` of the collection ``name`` (others are ignored)."""
        if name == self.users_name:
            for raw in documents:
                user = bson.decode(bytes(raw), DECODE)
                self.points[user_key(user["_id"])] = user.get(self._points_field, 0) or 0
        elif name == self.ledger_name:
            counts, ledger = self.per_user[name], self.ledger
            for user, amount in self.readers[name].users_and_amounts(documents):
                counts[user] += 1
                ledger[user] += amount
        elif name in self.readers:
            self.per_user[name].update(self.readers[name].users(documents))

    def warnings(self) -> list[str]:
        """Orphans per collection, and users whose points differ from their ledger's sum."""
        if not self.users_exported:
            return []
        warnings = []
        for name, counts in self.per_user.items():
            orphaned = orphans(counts, self.points)
            if orphaned:
                warnings.append(f"{name}: {orphaned} document(s) whose user does not exist (orphans).")
        if self.ledger_name in self.per_user:
            mismatched = points_off_ledger(self.points, self.ledger)
            if mismatched:
                shown = ", ".join(str(user_value(user)) for user in mismatched[:SHOWN_USERS])
                warnings.append(
                    f"{self.users_name}: {len(mismatched)} user(s) whose points differ from the sum of "
                    f"their {self.ledger_name} amounts (first: {shown})."
                )
        return warnings
