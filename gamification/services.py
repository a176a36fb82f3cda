"""Gamification services: the only code that changes points, streaks, badges, quests and achievements.

Every change of points is a ``PointsEntry`` plus an ``$inc`` of ``user.points`` in the same
multi-document transaction (:func:`studymaster.db.run_in_transaction`), so
``user.points == sum(ledger)`` holds even under concurrency and crashes. Each service
either joins the caller's :class:`ProgressBatch` (whose writes are flushed together, as one
operation) or, without one, makes its own change through :func:`progress_change`: its reads
outside any transaction, its writes in a short one that checks nothing changed in between.

This app never imports ``sessions_app``: the session services hand over the facts
(:class:`StudyChange`). Nor ``accounts``: the user is ``get_user_model()``, whose progress
fields (points, level, streaks, totals) only these services write.
"""

from __future__ import annotations

import datetime
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bson import ObjectId
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError
from django.utils import timezone
from pymongo import DeleteMany, DeleteOne, InsertOne, ReplaceOne, UpdateMany, UpdateOne
from pymongo.errors import ExecutionTimeout

from gamification import catalog, invariants, rules, totals
from gamification.models import (
    Achievement,
    Badge,
    PointsEntry,
    Quest,
    QuestProgress,
    StudyTotal,
    UserBadge,
    WeekPoints,
)
from gamification.totals import Days, Streaks, Summary
from studymaster.dates import today_in
from studymaster.db import (
    TRANSACTION_TIME_LIMIT_SECONDS,
    db_date,
    in_transaction,
    model_document,
    mongo_bulk_write,
    mongo_call,
    namespace,
    run_in_transaction,
)
from studymaster.errors import DomainError
from studymaster.retry import retry_idempotent

T = TypeVar("T")
MAX_ADJUSTMENT = 1_000_000
CATALOG_TTL_SECONDS = 60
# What a change of points builds on, of the user document (its version included).
PROGRESS_FIELDS = (
    "points",
    "level",
    "current_streak",
    "longest_streak",
    "total_minutes",
    "session_count",
    "last_study_date",
    "progress_version",
)


class GamificationError(DomainError):
    """A request the rules refuse; the message says why, ``field`` which input it is about."""


# The catalog, cached per process: it changes rarely and is read by every study session.
_catalog_cache: dict = {"expires": 0.0, "badges": [], "quests": []}


def catalog_cache_clear() -> None:
    _catalog_cache["expires"] = 0.0


def active_catalog() -> tuple[list[Badge], list[Quest]]:
    """Active badges and quests, cached for CATALOG_TTL_SECONDS (codes are stable keys)."""
    if time.monotonic() >= _catalog_cache["expires"]:
        _catalog_cache["badges"] = list(Badge.objects.filter(is_active=True))
        _catalog_cache["quests"] = list(Quest.objects.filter(is_active=True))
        _catalog_cache["expires"] = time.monotonic() + CATALOG_TTL_SECONDS
    return _catalog_cache["badges"], _catalog_cache["quests"]


def catalog_ensure() -> None:
    """Insert any catalog badge or quest whose code is missing; never overwrite existing rows."""
    for model, rows in ((Badge, catalog.BADGES), (Quest, catalog.QUESTS)):
        present = set(model.objects.values_list("code", flat=True))
        missing = [model(**row) for row in rows if row["code"] not in present]
        if missing:
            model.objects.bulk_create(missing)
    catalog_cache_clear()


# The unit of work -----------------------------------------------------------------------


class ProgressChanged(Exception):
    """The user's progress changed between a change's reads and its write: nothing was written."""


def progress_read(user: AbstractBaseUser) -> dict:
    """The user's progress fields as stored (one read; inside a transaction, as it sees them):
    the user object at hand may be older, and a change of points must build on what is stored."""
    users = get_user_model()._meta.db_table
    found = mongo_call(
        users,
        "find_one",
        {"_id": user.pk},
        projection=dict.fromkeys((*PROGRESS_FIELDS, *totals.LISTING_FIELDS), 1),
    )
    if found is None:
        raise GamificationError("This user does not exist any more.")
    progress = {name: found.get(name, 0) for name in PROGRESS_FIELDS}
    progress["last_study_date"] = totals.stored_date(found.get("last_study_date"))
    # A user stored before the version existed has none: its write then matches a missing field.
    progress["progress_version"] = found.get("progress_version")
    progress["listing"] = totals.listing(found)
    return progress


def progress_at_hand(user: AbstractBaseUser) -> dict:
    """The progress fields of the user object as it was loaded (by authentication, say), no read."""
    progress = {name: getattr(user, name) for name in PROGRESS_FIELDS}
    progress["listing"] = totals.listing({name: getattr(user, name) for name in totals.LISTING_FIELDS})
    return progress


@dataclass
class ProgressBatch:
    """Writes collected by the services for one user, flushed as ONE operation (a client
    ``bulkWrite``) inside a transaction: the caller's own writes first (``write_first``), then
    the ledger, the week points, the user document, the maintained totals, quests, badges and
    achievements."""

    user: AbstractBaseUser
    now: datetime.datetime
    progress: dict | None = None  # what the change builds on: read once, or the user's at hand
    # Whether the user document is written only while its progress_version is still the one in
    # ``progress`` (the change was composed outside the transaction that writes it).
    checked: bool = False
    entries: list[PointsEntry] = field(default_factory=list)
    user_set: dict = field(default_factory=dict)
    totals: totals.Writes = field(default_factory=totals.Writes)
    first: list = field(default_factory=list)
    quest_ops: list[UpdateOne] = field(default_factory=list)
    badge_ops: list[UpdateOne] = field(default_factory=list)
    achievement_ops: list[UpdateOne] = field(default_factory=list)

    @property
    def points(self) -> int:
        return sum(entry.amount for entry in self.entries)

    def read_progress(self) -> dict:
        if self.progress is None:
            self.progress = progress_read(self.user)
        return self.progress

    @property
    def empty(self) -> bool:
        writes = (self.first, self.entries, self.user_set, self.totals.operations, self.quest_ops)
        return not any((*writes, self.badge_ops, self.achievement_ops))

    def write_first(self, collection: str, document: dict) -> None:
        """Insert ``document`` into ``collection`` before anything else (a study session)."""
        self.first.append(InsertOne(document, namespace=namespace(collection)))

    def delete_first(self, collection: str, document_id) -> None:
        """Delete the document ``document_id`` of ``collection`` before anything else."""
        self.first.append(DeleteOne({"_id": document_id}, namespace=namespace(collection)))

    def achieve(self, *, kind: str, title: str, reference: str) -> None:
        # An upsert, not an insert: a duplicate key would abort the whole transaction.
        self.achievement_ops.append(
            UpdateOne(
                {"user_id": self.user.pk, "kind": kind, "reference": reference},
                {"$setOnInsert": {"title": title, "created_at": self.now}},
                upsert=True,
                namespace=namespace(Achievement._meta.db_table),
            )
        )

    def level(self) -> int:
        """The user's level once the batch is written."""
        return rules.level_for_points(self.read_progress()["points"] + self.points)

    def _total_writes(self) -> list:
        collection = namespace(StudyTotal._meta.db_table)
        writes = []
        for kind, key, fields in self.totals.operations:
            selector = {"user_id": self.user.pk, "key": key}
            if kind == "put":
                document = {"user_id": self.user.pk, "key": key, **fields}
                writes.append(ReplaceOne(selector, document, upsert=True, namespace=collection))
            elif kind == "set":
                writes.append(UpdateOne(selector, {"$set": fields}, namespace=collection))
            else:
                writes.append(DeleteOne(selector, namespace=collection))
        return writes

    def _week_writes(self) -> list:
        weeks = Counter()
        for entry in self.entries:
            weeks[totals.week_start(entry.studied_at)] += entry.amount
        collection = namespace(WeekPoints._meta.db_table)
        listed = self.read_progress()["listing"]
        return [
            UpdateOne(
                {"user_id": self.user.pk, "week_start": db_date(week)},
                {"$inc": {"points": points}, "$set": listed},
                upsert=True,
                namespace=collection,
            )
            for week, points in sorted(weeks.items())
            if points
        ]

    def flush(self) -> dict:
        """Write everything; return the user's totals after the change (points, level)."""
        progress = self.read_progress()
        points, level = progress["points"] + self.points, self.level()
        for reached in range(progress["level"] + 1, level + 1):
            self.achieve(
                kind=Achievement.Kind.LEVEL_UP, title=f"Reached level {reached}", reference=f"level:{reached}"
            )
        ledger = namespace(PointsEntry._meta.db_table)
        # The user document is written by every change, so two concurrent changes for one user
        # always conflict (one of them is retried), and its version tells a change composed
        # outside the transaction whether another came in since its reads.
        selector = {"_id": self.user.pk}
        if self.checked:
            selector["progress_version"] = progress["progress_version"]
        user_update = UpdateOne(
            selector,
            {
                "$inc": {"points": self.points, "progress_version": 1},
                "$set": {"level": level, **self.user_set},
            },
            namespace=namespace(get_user_model()._meta.db_table),
        )
        before_user = [
            *self.first,
            *(InsertOne(model_document(entry), namespace=ledger) for entry in self.entries),
            *self._week_writes(),
        ]
        result = mongo_bulk_write(
            [
                *before_user,
                user_update,
                *self._total_writes(),
                *self.quest_ops,
                *self.badge_ops,
                *self.achievement_ops,
            ],
            verbose=self.checked,
        )
        if self.checked and result.update_results[len(before_user)].matched_count != 1:
            raise ProgressChanged()  # the transaction is aborted: nothing of it is written
        self._user_after(points, level)
        return {"points": points, "level": level}

    def _user_after(self, points: int, level: int) -> None:
        """The user object as stored after the change, so that it can build the next one."""
        for name, value in self.user_set.items():
            setattr(self.user, name, totals.stored_date(value) if name == "last_study_date" else value)
        self.user.points, self.user.level = points, level
        self.user.progress_version = (self.read_progress()["progress_version"] or 0) + 1


def progress_change(
    user: AbstractBaseUser, now: datetime.datetime, compose: Callable[[ProgressBatch], T]
) -> T:
    """Make one change of ``user``'s progress: ``compose(batch)`` reads what the change needs and
    queues its writes in ``batch``; they are then written together, in one transaction.

    Inside a transaction already (the caller's), everything joins it. Otherwise ``compose``
    reads outside any transaction, starting from the progress of ``user`` as it was loaded,
    and the transaction holds the writes alone (a bulkWrite, then the commit), which checks the
    user's ``progress_version``: when another change came in since, nothing is written, the
    progress is read again and ``compose`` runs again. Every change of progress writes the
    version, so what ``compose`` read is what the write builds on. A ``compose`` that queues no
    write (a replayed request) writes nothing. Gives up after TRANSACTION_TIME_LIMIT_SECONDS
    with ExecutionTimeout, as a transaction does.
    """
    if in_transaction():
        batch = ProgressBatch(user=user, now=now)
        result = compose(batch)
        if not batch.empty:
            batch.flush()
        return result

    # Reads only, into a new batch each time: a transient failure runs them again, as
    # with_transaction reruns a transaction.
    @retry_idempotent(operation="progress_change")
    def composed(progress: dict) -> tuple[ProgressBatch, T]:
        batch = ProgressBatch(user=user, now=now, progress=progress, checked=True)
        return batch, compose(batch)

    progress = progress_at_hand(user)
    deadline = time.monotonic() + TRANSACTION_TIME_LIMIT_SECONDS
    while True:
        batch, result = composed(progress)
        if batch.empty:
            return result
        try:
            run_in_transaction(batch.flush)
            return result
        except (ProgressChanged, IntegrityError):
            # A duplicate key may be another change's doing (a concurrent delete of the same
            # session, whose ledger entry came first): then that change moved the version.
            fresh = retry_idempotent(progress_read, operation="progress_read")(user)
            if fresh["progress_version"] == progress["progress_version"]:
                raise
            if time.monotonic() > deadline:
                raise ExecutionTimeout("The user's progress kept changing; try again.", 50) from None
            progress = fresh


def _in_batch(
    user: AbstractBaseUser, batch: ProgressBatch | None, write, now: datetime.datetime | None = None
):
    """Run ``write(batch)`` in the caller's batch, or as a change of its own."""
    if batch is not None:
        return write(batch)
    return progress_change(user, now or timezone.now(), write)


# Services -------------------------------------------------------------------------------


def points_award(
    *,
    user: AbstractBaseUser,
    amount: int,
    reason: str,
    reference: str,
    note: str = "",
    studied_at: datetime.datetime | None = None,
    batch: ProgressBatch | None = None,
) -> PointsEntry:
    """Add a ledger entry and move ``user.points`` by ``amount`` in the same transaction.

    ``studied_at`` is when the study the points are for happened (default: now).
    """

    def write(target: ProgressBatch) -> PointsEntry:
        entry = PointsEntry(
            id=ObjectId(),
            user=user,
            amount=amount,
            reason=reason,
            reference=reference,
            note=note,
            created_at=target.now,
            studied_at=studied_at or target.now,
        )
        target.entries.append(entry)
        return entry

    return _in_batch(user, batch, write)


def points_adjustment_check(*, amount: int, note: str) -> None:
    """Refuse an adjustment of ``amount`` points that is zero or implausibly large, or has no note.

    Raises GamificationError naming the field (``amount`` or ``note``).
    """
    if amount == 0 or abs(amount) > MAX_ADJUSTMENT:
        raise GamificationError(
            f"The amount must be a non-zero whole number within ±{MAX_ADJUSTMENT}.", field="amount"
        )
    if not note.strip():
        raise GamificationError("Say why the points are adjusted.", field="note")


def points_adjust(*, user: AbstractBaseUser, amount: int, note: str, staff_username: str) -> PointsEntry:
    """An admin's correction: a ledger entry, never a direct edit of ``user.points``.

    Raises GamificationError (see :func:`points_adjustment_check`).
    """
    points_adjustment_check(amount=amount, note=note)
    return points_award(
        user=user,
        amount=amount,
        reason=PointsEntry.Reason.ADMIN_ADJUSTMENT,
        reference=uuid.uuid4().hex,
        note=f"{staff_username}: {note.strip()}"[:200],
    )


def badge_award(*, user: AbstractBaseUser, badge: Badge, batch: ProgressBatch | None = None) -> None:
    """Give ``user`` the badge once (an upsert on the unique user+badge key) and record the achievement."""

    def write(target: ProgressBatch) -> None:
        target.badge_ops.append(
            UpdateOne(
                {"user_id": user.pk, "badge_id": badge.code},
                {"$setOnInsert": {"earned_at": target.now}},
                upsert=True,
                namespace=namespace(UserBadge._meta.db_table),
            )
        )
        target.achieve(
            kind=Achievement.Kind.BADGE_EARNED,
            title=f"Badge earned: {badge.name}",
            reference=f"badge:{badge.code}",
        )

    _in_batch(user, batch, write)


@dataclass(frozen=True)
class RewardHeld:
    """The reward a quest period holds: the points paid, and the time zone they were earned in."""

    points: int
    time_zone: str


def quest_progress_record(
    *,
    user: AbstractBaseUser,
    quest: Quest,
    period_start: datetime.date,
    period_end: datetime.date,
    progress_before: int,
    progress_after: int,
    held: RewardHeld | None,
    cause: str,
    time_zone: str,
    studied_at: datetime.datetime,
    batch: ProgressBatch | None = None,
) -> int:
    """Store the progress of an OPEN period; pay the reward when the progress reaches the target
    and the period holds none (``held``), take the held reward back when it falls below.

    ``cause`` is the study session that moved the progress, started at ``studied_at`` and
    logged in ``time_zone`` (the zone a reward it pays is earned in); it makes the ledger
    references unique. Returns the points paid (positive), taken back (negative) or 0.
    """

    def write(target: ProgressBatch) -> int:
        now = target.now
        changes = {
            "progress": progress_after,
            "target": quest.target,
            "period_end": db_date(period_end),
            "updated_at": now,
        }
        paid = 0
        reference = f"{quest.code}:{period_start.isoformat()}:{cause}"
        if progress_before < quest.target <= progress_after and held is None:
            paid = quest.reward_points
            points_award(
                user=user,
                amount=paid,
                reason=PointsEntry.Reason.QUEST_REWARD,
                reference=reference,
                studied_at=studied_at,
                batch=target,
            )
            changes.update(completed=True, completed_at=now, reward_points=paid, time_zone=time_zone)
            target.achieve(
                kind=Achievement.Kind.QUEST_COMPLETED,
                title=f"Quest completed: {quest.title}",
                reference=f"quest:{quest.code}:{period_start.isoformat()}",
            )
        elif progress_after < quest.target <= progress_before:
            if held is not None:
                # Take back what was actually paid (the catalog may have changed since).
                paid = -held.points
                points_award(
                    user=user,
                    amount=paid,
                    reason=PointsEntry.Reason.QUEST_REWARD_REVOKED,
                    reference=reference,
                    studied_at=studied_at,
                    batch=target,
                )
            changes.update(completed=False, completed_at=None, reward_points=0)
        insert_only = {"user_id": user.pk, "quest_id": quest.code, "period_start": db_date(period_start)}
        defaults = {"completed": False, "completed_at": None, "reward_points": 0, "time_zone": time_zone}
        target.quest_ops.append(
            UpdateOne(
                insert_only,
                {"$set": changes, "$setOnInsert": {k: v for k, v in defaults.items() if k not in changes}},
                upsert=True,
                namespace=namespace(QuestProgress._meta.db_table),
            )
        )
        return paid

    return _in_batch(user, batch, write)


def _rewards_held(user: AbstractBaseUser, periods: set[tuple[str, datetime.date]]) -> dict:
    """The rewards held for ``periods`` ((quest code, period start) pairs): one read of the
    periods' progress by (user, period start), none if empty."""
    if not periods:
        return {}
    rows = mongo_call(
        QuestProgress._meta.db_table,
        "find",
        {"user_id": user.pk, "period_start": {"$in": sorted(db_date(start) for _, start in periods)}},
        projection={"_id": 0, "quest_id": 1, "period_start": 1, "reward_points": 1, "time_zone": 1},
    )
    held = {}
    for row in rows:
        period = (row["quest_id"], row["period_start"].date())
        if period in periods and row.get("reward_points", 0) > 0:
            held[period] = RewardHeld(points=row["reward_points"], time_zone=row["time_zone"])
    return held


# The study-session reaction ----------------------------------------------------------------


@dataclass(frozen=True)
class StudyChange:
    """One logged (minutes > 0) or deleted (minutes < 0) study session, as the game needs it."""

    session_id: str
    local_date: datetime.date  # in the session's time zone
    time_zone: str  # the zone the session was logged in
    started_at: datetime.datetime  # when the study happened: its points count for that week
    minutes: int
    subject_key: str  # how subjects are compared
    subject: str  # as the session spells it

    @property
    def logged(self) -> bool:
        return self.minutes > 0


@dataclass(frozen=True)
class StudyOutcome:
    points: int  # paid (or, for a deletion, taken back): minutes within the daily cap, rewards
    level: int
    badges: list[str]
    minutes_unpaid: int = 0  # of a logged session: the minutes over the day's cap


def _quests_record(
    user: AbstractBaseUser,
    change: StudyChange,
    quests: list[Quest],
    paid_before: Days,
    paid_after: Days,
    batch: ProgressBatch,
) -> None:
    """Move the quests of the periods holding the session's local date, while they are open.

    ``paid_before`` and ``paid_after`` hold the paid days of the ISO week of that date."""
    moved = []
    for quest in quests:
        start, end = rules.period_bounds(quest.period, today=change.local_date)
        progress_before = rules.quest_metric(quest.metric, paid_before, start=start, end=end)
        progress_after = rules.quest_metric(quest.metric, paid_after, start=start, end=end)
        if progress_before != progress_after:
            moved.append((quest, start, end, progress_before, progress_after))
    # Whether a period holds a reward matters only where the progress crosses the target.
    held = _rewards_held(
        user,
        {
            (quest.code, start)
            for quest, start, _, before, after in moved
            if (before < quest.target) != (after < quest.target)
        },
    )
    for quest, start, end, progress_before, progress_after in moved:
        reward = held.get((quest.code, start))
        # Only open periods count: open in the zone their reward was earned in (changing the
        # time zone cannot close a period early, nor reopen one), else in the session's zone.
        if today_in(reward.time_zone if reward else change.time_zone, batch.now) > end:
            continue
        quest_progress_record(
            user=user,
            quest=quest,
            period_start=start,
            period_end=end,
            progress_before=progress_before,
            progress_after=progress_after,
            held=reward,
            cause=change.session_id,
            time_zone=change.time_zone,
            studied_at=change.started_at,
            batch=batch,
        )


def _totals_find(user: AbstractBaseUser, selector: dict) -> totals.Docs:
    # No projection: the embedded server's projection of the nested month documents costs more
    # than reading them (gamification.selectors.study_range_get); the two ids are dropped here.
    rows = mongo_call(StudyTotal._meta.db_table, "find", {"user_id": user.pk, "key": selector})
    return {row.pop("key"): {k: v for k, v in row.items() if k not in ("_id", "user_id")} for row in rows}


def _totals_between(user: AbstractBaseUser, low: str, high: str) -> totals.Docs:
    """The user's totals with keys from ``low`` to ``high`` (a second read, in rare cases)."""
    return _totals_find(user, {"$gte": low, "$lte": high})


def _badge_metrics(*, sessions: int, summary: Summary, longest_streak: int) -> dict[str, int]:
    """The badges' metrics (catalog): paid minutes, as badges count them."""
    return {
        catalog.SESSION_COUNT: sessions,
        catalog.TOTAL_MINUTES: summary.paid_minutes,
        catalog.LONGEST_STREAK: longest_streak,
        catalog.DISTINCT_SUBJECTS: summary.subjects,
    }


def _day_change(user, change: StudyChange, docs: totals.Docs, batch: ProgressBatch) -> tuple[dict, dict, int]:
    """The day's totals before and after, and the minutes it pays (or takes back) within the
    daily cap, paid through the ledger; the month's document and its summary are queued."""
    day, cap = change.local_date, settings.STUDY_DAILY_CAP_MINUTES
    stored = totals.day_entry(docs, day)
    entry = totals.day_changed(
        stored, minutes=change.minutes, subject_key=change.subject_key, subject=change.subject
    )
    before, after = stored or {"minutes": 0, "sessions": 0}, entry or {"minutes": 0, "sessions": 0}
    # A change moves the points by what it moves the day's paid minutes.
    paid = rules.paid_minutes(after["minutes"], cap=cap) - rules.paid_minutes(before["minutes"], cap=cap)
    if paid:
        points_award(
            user=user,
            amount=paid * rules.POINTS_PER_MINUTE,
            reason=PointsEntry.Reason.STUDY_SESSION
            if change.logged
            else PointsEntry.Reason.STUDY_SESSION_DELETED,
            reference=change.session_id,
            studied_at=change.started_at,
            batch=batch,
        )
    month = totals.month_with(docs.get(totals.month_key(day)), day, entry)
    if month:
        batch.totals.put(totals.month_key(day), month)
        batch.totals.put(totals.month_sum_key(day), totals.month_sum(month))
    else:
        batch.totals.delete(totals.month_key(day))
        batch.totals.delete(totals.month_sum_key(day))
    return before, after, paid


def _week_paid(docs: totals.Docs, day: datetime.date, after: dict) -> tuple[Days, Days]:
    """The paid days of the ISO week of ``day``, before and after the change: what quests count."""
    cap = settings.STUDY_DAILY_CAP_MINUTES
    monday = day - datetime.timedelta(days=day.weekday())
    before = totals.days_between(docs, monday, monday + datetime.timedelta(days=6))
    changed = {**before, day: (after["minutes"], after["sessions"])}
    if not after["sessions"]:
        del changed[day]
    return rules.paid_days(before, cap=cap), rules.paid_days(changed, cap=cap)


def _study_change(user: AbstractBaseUser, change: StudyChange, batch: ProgressBatch) -> StudyOutcome:
    """Everything a change of study does, queued in ``batch`` (see study_change_record)."""
    badges, quests = active_catalog()
    progress = batch.read_progress()
    keys = totals.keys_for_change(
        day=change.local_date,
        subject_key=change.subject_key,
        logged=change.logged,
        last_study_date=progress["last_study_date"],
    )
    docs = _totals_find(user, {"$in": keys})
    summary = Summary.of(docs.get(totals.SUMMARY))
    step = 1 if change.logged else -1
    metrics_before = _badge_metrics(
        sessions=progress["session_count"], summary=summary, longest_streak=progress["longest_streak"]
    )
    before, after, paid = _day_change(user, change, docs, batch)
    _subject_change(change, docs, summary, batch)
    summary.paid_minutes += paid
    streaks = _streaks_change(user, change, docs, progress, before, after, summary, batch)
    if summary.empty:
        batch.totals.delete(totals.SUMMARY)
    else:
        batch.totals.put(totals.SUMMARY, summary.document())
    batch.user_set.update(
        total_minutes=progress["total_minutes"] + change.minutes,
        session_count=progress["session_count"] + step,
        current_streak=streaks.current,
        longest_streak=streaks.longest,
        last_study_date=db_date(streaks.last) if streaks.last else None,
    )
    metrics_after = _badge_metrics(
        sessions=progress["session_count"] + step, summary=summary, longest_streak=streaks.longest
    )
    for milestone in rules.STREAK_RECORD_MILESTONES:
        if progress["longest_streak"] < milestone <= streaks.longest:
            batch.achieve(
                kind=Achievement.Kind.STREAK_RECORD,
                title=f"Longest streak reached {milestone} days",
                reference=f"streak:{milestone}",
            )
    _quests_record(user, change, quests, *_week_paid(docs, change.local_date, after), batch)
    earned = []
    if change.logged:  # a badge, once earned, stays; deletions never award one either
        for badge in badges:
            if metrics_before[badge.metric] < badge.threshold <= metrics_after[badge.metric]:
                badge_award(user=user, badge=badge, batch=batch)
                earned.append(badge.code)
    unpaid = change.minutes - paid if change.logged else 0
    return StudyOutcome(points=batch.points, level=batch.level(), badges=earned, minutes_unpaid=unpaid)


def _subject_change(change: StudyChange, docs: totals.Docs, summary: Summary, batch: ProgressBatch) -> None:
    """The subject's all-time totals, and how many subjects the user has studied."""
    key = totals.subject_key_of(change.subject_key)
    subject = docs.get(key) or {"sessions": 0, "minutes": 0}
    sessions = subject["sessions"] + (1 if change.logged else -1)
    if sessions > 0:
        batch.totals.put(key, {"sessions": sessions, "minutes": subject["minutes"] + change.minutes})
    else:
        batch.totals.delete(key)
    if change.logged and subject["sessions"] <= 0:
        summary.subjects += 1
    elif not change.logged and sessions <= 0:
        summary.subjects = max(summary.subjects - 1, 0)


def _streaks_change(
    user, change: StudyChange, docs, progress: dict, before: dict, after: dict, summary: Summary, batch
) -> Streaks:
    """The streaks after the change: only a day that becomes, or stops being, a study day moves a run."""
    streaks = Streaks(progress["current_streak"], progress["longest_streak"], progress["last_study_date"])
    if not before["sessions"] and after["sessions"]:
        return totals.streaks_after_new_day(
            change.local_date, docs, streaks=streaks, lengths=summary.run_lengths, writes=batch.totals
        )
    if before["sessions"] and not after["sessions"]:
        return totals.streaks_after_day_gone(
            change.local_date,
            docs,
            streaks=streaks,
            lengths=summary.run_lengths,
            writes=batch.totals,
            more=lambda low, high: _totals_between(user, low, high),
        )
    return streaks


def study_change_record(
    *, user: AbstractBaseUser, change: StudyChange, now: datetime.datetime, batch: ProgressBatch | None = None
) -> StudyOutcome:
    """React to a logged or deleted study session: points, totals, streaks, quests, badges, achievements.

    Each local day pays for at most STUDY_DAILY_CAP_MINUTES of its study; the minutes over it
    count for the totals and streaks, not for points, badges or quests. The rules read only
    what they need: the user's progress, the maintained totals of the session's week, subject
    and neighbouring streak runs (``gamification.totals``), and the rewards the periods hold
    when a quest crosses its target. In the caller's ``batch``, which also holds the session's
    own write (``ProgressBatch.write_first``) and which the caller writes; without one, as a
    change of its own (:func:`progress_change`).
    """
    return _in_batch(user, batch, lambda target: _study_change(user, change, target), now=now)


# Repairs ------------------------------------------------------------------------------------


def leaderboard_listing_set(*, user_id: ObjectId) -> None:
    """Copy the user's listing (``totals.LISTING_FIELDS``, as stored) onto all their
    ``WeekPoints`` after one of those fields changed (a profile change, the admin): one
    transaction, which also moves the user's progress_version, so that a change of study
    composed meanwhile from the old fields is composed again (progress_change) and cannot
    write them back."""
    users = get_user_model()._meta.db_table

    def work() -> None:
        owner = mongo_call(
            users, "find_one", {"_id": user_id}, projection=dict.fromkeys(totals.LISTING_FIELDS, 1)
        )
        if owner is None:
            return
        mongo_bulk_write(
            [
                UpdateMany(
                    {"user_id": user_id},
                    {"$set": totals.listing(owner)},
                    namespace=namespace(WeekPoints._meta.db_table),
                ),
                UpdateOne({"_id": user_id}, {"$inc": {"progress_version": 1}}, namespace=namespace(users)),
            ]
        )

    run_in_transaction(work)


def study_totals_rewrite(*, user_id: ObjectId, sessions_model) -> totals.Expected:
    """Rebuild one user's maintained totals, week points and progress fields from their study
    sessions (of ``sessions_model``: this app does not import sessions_app) and their ledger, in
    one transaction: a change logged meanwhile conflicts with it on the user document and one of
    the two is retried. Returns what was written."""
    columns = invariants.session_columns(sessions_model)
    ledger_user = invariants.user_column(PointsEntry)

    def work() -> totals.Expected:
        sessions = mongo_call(
            sessions_model._meta.db_table,
            "find",
            {columns["user"]: user_id},
            projection=dict.fromkeys(columns.values(), 1),
        )
        ledger = mongo_call(
            PointsEntry._meta.db_table,
            "find",
            {ledger_user: user_id},
            projection=dict.fromkeys(invariants.LEDGER_FIELDS, 1),
        )
        expected = totals.expected_totals(
            [invariants.session_facts(row, columns) for row in sessions],
            [invariants.ledger_facts(row) for row in ledger],
        )
        owner = mongo_call(
            get_user_model()._meta.db_table,
            "find_one",
            {"_id": user_id},
            projection=dict.fromkeys(totals.LISTING_FIELDS, 1),
        )
        listed = totals.listing(owner) if owner is not None else {}
        study_totals, weeks = namespace(StudyTotal._meta.db_table), namespace(WeekPoints._meta.db_table)
        user = dict(
            expected.user,
            last_study_date=db_date(expected.user["last_study_date"])
            if expected.user["last_study_date"]
            else None,
        )
        mongo_bulk_write(
            [
                DeleteMany({"user_id": user_id}, namespace=study_totals),
                *(
                    InsertOne(
                        {"_id": ObjectId(), "user_id": user_id, "key": key, **fields}, namespace=study_totals
                    )
                    for key, fields in expected.documents.items()
                ),
                DeleteMany({"user_id": user_id}, namespace=weeks),
                *(
                    InsertOne(
                        {
                            "_id": ObjectId(),
                            "user_id": user_id,
                            "week_start": db_date(week),
                            "points": points,
                            **listed,
                        },
                        namespace=weeks,
                    )
                    for week, points in sorted(expected.week_points.items())
                ),
                UpdateOne(
                    {"_id": user_id},
                    {"$set": user, "$inc": {"progress_version": 1}},
                    namespace=namespace(get_user_model()._meta.db_table),
                ),
            ]
        )
        return expected

    return run_in_transaction(work)
