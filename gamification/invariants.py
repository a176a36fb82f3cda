"""The game's invariants, defined once, and the readers that gather what they are checked on.

- **Points equal the ledger**: each user's ``points`` is the sum of the ``amount`` of their
  ``PointsEntry`` rows (0 without any).
- **No orphans**: every per-user document (a ledger entry, an earned badge, an achievement, a
  study session) belongs to a user that exists.
- **A copy keeps each user's documents**: the same number per user on both sides.
- **The maintained totals equal the history**: each user's study totals, week points and
  progress fields are what their study sessions and ledger make them
  (:func:`totals_check`, with the rules of ``gamification.totals``).

The invariants are pure functions over per-user counts (:func:`points_off_ledger`,
:func:`orphans`, :func:`count_differences`). The counts come from a database
(:func:`ledger_check`, two reads) or from raw BSON as it streams past (:class:`RawUserFields`
and :class:`UserTally`: export_local must not scan the database twice). Both name the fields
through the models (``PointsEntry._meta.get_field("user").column``...), never by hand.

Per-user collections of other apps (study sessions) are passed in as models by the caller:
this app does not import the apps above it.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import bson
from bson import ObjectId
from bson.codec_options import CodecOptions, DatetimeConversion
from django.contrib.auth import get_user_model
from django.db.models import Model

from gamification import totals
from gamification.models import PointsEntry, StudyTotal, WeekPoints
from studymaster.reading import documents_read_ahead

K = TypeVar("K")
# Decodes any document a dump can hold, dates outside Python's range included.
DECODE = CodecOptions(tz_aware=True, datetime_conversion=DatetimeConversion.DATETIME_AUTO)
SHOWN_USERS = 3
# Five cursors read at once, each with a batch in use and the next one fetched: 20,000 documents
# decoded at most, whatever the size (5,000 and 10,000 took as long against a 10 ms server).
TOTALS_BATCH_DOCUMENTS = 2_000
PROGRESS_EVERY = 500  # users between two progress reports of totals_check


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


# -- the maintained totals ----------------------------------------------------------------------------
@dataclass
class TotalsCheck:
    """Users whose maintained totals (``gamification.totals``) differ from their sessions and ledger."""

    users: int = 0  # how many users were checked
    drifted: Counter = field(default_factory=Counter)  # what differs -> how many users
    off: list[str] = field(default_factory=list)  # str(_id) of the users with any difference
    off_ledger: list[str] = field(default_factory=list)  # of ``off``, those whose points are not the ledger's
    repaired: int = 0

    def summary(self) -> str:
        """One line: the users checked, and what differs for how many (the first users named)."""
        if not self.off:
            return f"{self.users} users"
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.drifted.items()))
        return f"{len(self.off)} of {self.users} users differ ({kinds}; first: {', '.join(self.off[:SHOWN_USERS])})"


def session_columns(sessions_model: type[Model]) -> dict[str, str]:
    """The study session fields the totals need, by name -> column (``user``: ``user_id``...)."""
    names = ("user", "local_date", "duration_minutes", "subject_key", "subject")
    return {name: sessions_model._meta.get_field(name).column for name in names}


def session_facts(document: dict, columns: dict[str, str]) -> totals.SessionFacts:
    return totals.SessionFacts(
        local_date=totals.stored_date(document[columns["local_date"]]),
        minutes=document[columns["duration_minutes"]],
        subject_key=document[columns["subject_key"]],
        subject=document[columns["subject"]],
    )


LEDGER_FIELDS = ("reason", "amount", "studied_at")


def ledger_facts(document: dict) -> totals.LedgerFacts:
    return totals.LedgerFacts(document["reason"], document["amount"], document["studied_at"])


def _runs_by_user(cursor, user_field: str) -> Iterator[tuple[ObjectId, list[dict]]]:
    """(user, documents) of a cursor sorted by ``user_field``; documents without an ObjectId user
    (which no user can own: the orphans invariant counts them) are skipped."""
    current, batch = None, []
    for document in cursor:
        user = document.get(user_field)
        if not isinstance(user, ObjectId):
            continue
        if batch and user != current:
            yield current, batch
            batch = []
        current = user
        batch.append(document)
    if batch:
        yield current, batch


class _ByUser:
    """The documents of one user at a time from a cursor sorted by user (merge join)."""

    def __init__(self, cursor, user_field: str):
        self._runs = _runs_by_user(cursor, user_field)
        self._next = next(self._runs, None)

    def of(self, user: ObjectId) -> list[dict]:
        while self._next is not None and self._next[0] < user:
            self._next = next(self._runs, None)
        if self._next is not None and self._next[0] == user:
            documents, self._next = self._next[1], next(self._runs, None)
            return documents
        return []


def totals_collections(sessions_model: type[Model]) -> tuple[str, ...]:
    """The collections :func:`totals_check` reads, each in full: users, sessions, ledger, study
    totals, week points."""
    models = (get_user_model(), sessions_model, PointsEntry, StudyTotal, WeekPoints)
    return tuple(model._meta.db_table for model in models)


def totals_check(
    db,
    *,
    sessions_model: type[Model],
    repair: Callable[[ObjectId], None] | None = None,
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
    on_batch: Callable[[str, bytes], None] | None = None,
) -> TotalsCheck:
    """Every user's maintained totals in ``db`` (a PyMongo database) against what their study
    sessions and ledger say (:func:`gamification.totals.expected_totals`): one pass over each
    collection, sorted by user, so memory holds one user's documents at a time. Each week's
    points must also list the user as the user document says (``totals.listing``: "week
    listing").

    ``repair(user_id)`` is called for each user that differs; ``progress(users)`` now and then.
    ``stop`` set ends the check before the next user: what it returns then covers the users so far.
    Each collection is read in batches, the next fetched in a thread while this one is checked.
    ``on_batch(collection name, raw batch)`` sees every batch of the collections read
    (:func:`totals_collections`), each read to its end, documents past the last user included.
    """
    columns = session_columns(sessions_model)
    ledger_user = user_column(PointsEntry)
    readers = []
    with contextlib.ExitStack() as cursors:

        def read(model: type[Model], sort: list) -> Iterator[dict]:
            # Whole documents: on the embedded server a projection costs more than the fields it
            # leaves out (1.7 times the server time for the sessions, twice as much for the totals).
            collection = db[model._meta.db_table]
            seen = None if on_batch is None else functools.partial(on_batch, collection.name)
            reader = documents_read_ahead(
                collection, sort=sort, batch_size=TOTALS_BATCH_DOCUMENTS, on_batch=seen
            )
            readers.append(reader)
            return cursors.enter_context(contextlib.closing(reader))

        users = read(get_user_model(), [("_id", 1)])
        by_user = {
            "sessions": _ByUser(read(sessions_model, [(columns["user"], 1)]), columns["user"]),
            "ledger": _ByUser(read(PointsEntry, [(ledger_user, 1)]), ledger_user),
            "totals": _ByUser(read(StudyTotal, [("user_id", 1), ("key", 1)]), "user_id"),
            "weeks": _ByUser(read(WeekPoints, [("user_id", 1)]), "user_id"),
        }
        check = _totals_of(users, by_user, columns, repair=repair, progress=progress, stop=stop)
        if on_batch is not None and not (stop is not None and stop.is_set()):
            for reader in readers:  # what no user reached: orphans, and documents without a user
                deque(reader, maxlen=0)
        return check


def _totals_of(users, by_user: dict[str, _ByUser], columns, *, repair, progress, stop) -> TotalsCheck:
    check = TotalsCheck()
    for user in users:
        if stop is not None and stop.is_set():
            break
        expected = totals.expected_totals(
            (session_facts(document, columns) for document in by_user["sessions"].of(user["_id"])),
            (ledger_facts(document) for document in by_user["ledger"].of(user["_id"])),
        )
        documents = {
            row["key"]: {k: v for k, v in row.items() if k not in ("_id", "user_id", "key")}
            for row in by_user["totals"].of(user["_id"])
        }
        week_rows = by_user["weeks"].of(user["_id"])
        weeks = {totals.stored_date(row["week_start"]): row["points"] for row in week_rows}
        kinds = totals.differences(expected, documents, weeks, user)
        listed = totals.listing(user)
        if any({name: row.get(name) for name in listed} != listed for row in week_rows):
            kinds.append("week listing")
        check.users += 1
        if kinds:
            check.drifted.update(kinds)
            check.off.append(str(user["_id"]))
            if "points" in kinds:
                check.off_ledger.append(str(user["_id"]))
            if repair is not None:
                repair(user["_id"])
                check.repaired += 1
        if progress is not None and check.users % PROGRESS_EVERY == 0:
            progress(check.users)
    return check
