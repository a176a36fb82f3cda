"""Gamification services: the only code that changes points, streaks, badges, quests and achievements.

Every change of points is a ``PointsEntry`` plus an ``$inc`` of ``user.points`` in the same
multi-document transaction (:func:`studymaster.db.run_in_transaction`), so
``user.points == sum(ledger)`` holds even under concurrency and crashes. Each service
either joins the caller's :class:`ProgressBatch` (whose writes are flushed together,
one operation per collection) or, without one, runs and commits its own transaction.

This app never imports ``sessions_app``: the session services hand over the facts
(:class:`StudyChange`). Nor ``accounts``: the user is ``get_user_model()``, whose progress
fields (points, level, streaks, totals) only these services write.
"""

from __future__ import annotations

import datetime
import time
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone
from pymongo import ReturnDocument, UpdateOne

from gamification import catalog, rules
from gamification.models import Achievement, Badge, PointsEntry, Quest, QuestProgress, UserBadge
from studymaster.dates import local_today, today_in
from studymaster.db import db_date, mongo_call, run_in_transaction
from studymaster.errors import DomainError

MAX_ADJUSTMENT = 1_000_000
CATALOG_TTL_SECONDS = 60

Days = dict[datetime.date, tuple[int, int]]  # local date -> (minutes, sessions)


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


@dataclass
class ProgressBatch:
    """Writes collected by the services for one user, flushed in one go inside a transaction."""

    user: AbstractBaseUser
    now: datetime.datetime
    entries: list[PointsEntry] = field(default_factory=list)
    user_set: dict = field(default_factory=dict)
    quest_ops: list[UpdateOne] = field(default_factory=list)
    badge_ops: list[UpdateOne] = field(default_factory=list)
    achievement_ops: list[UpdateOne] = field(default_factory=list)

    @property
    def points(self) -> int:
        return sum(entry.amount for entry in self.entries)

    def achieve(self, *, kind: str, title: str, reference: str) -> None:
        # An upsert, not an insert: a duplicate key would abort the whole transaction.
        self.achievement_ops.append(
            UpdateOne(
                {"user_id": self.user.pk, "kind": kind, "reference": reference},
                {"$setOnInsert": {"title": title, "created_at": self.now}},
                upsert=True,
            )
        )

    def flush(self) -> dict:
        """Write everything; return the user's totals after the change (points, level)."""
        if self.entries:
            PointsEntry.objects.bulk_create(self.entries)
        # The user document is written by every change, so two concurrent changes for
        # one user always conflict and one of them is retried: that serializes them.
        users = get_user_model()._meta.db_table
        totals = mongo_call(
            users,
            "find_one_and_update",
            {"_id": self.user.pk},
            {"$inc": {"points": self.points}, **({"$set": self.user_set} if self.user_set else {})},
            projection={"points": 1, "level": 1},
            return_document=ReturnDocument.AFTER,
        )
        level = rules.level_for_points(totals["points"])
        if level != totals["level"]:
            mongo_call(users, "update_one", {"_id": self.user.pk}, {"$set": {"level": level}})
            for reached in range(totals["level"] + 1, level + 1):
                self.achieve(
                    kind=Achievement.Kind.LEVEL_UP,
                    title=f"Reached level {reached}",
                    reference=f"level:{reached}",
                )
            totals["level"] = level
        for model, ops in (
            (QuestProgress, self.quest_ops),
            (UserBadge, self.badge_ops),
            (Achievement, self.achievement_ops),
        ):
            if ops:
                mongo_call(model._meta.db_table, "bulk_write", ops, ordered=False)
        self.user.points, self.user.level = totals["points"], totals["level"]
        return totals


def _in_batch(user: AbstractBaseUser, batch: ProgressBatch | None, write):
    """Run ``write(batch)`` in the caller's batch, or in a transaction of its own."""
    if batch is not None:
        return write(batch)

    def work():
        own = ProgressBatch(user=user, now=timezone.now())
        result = write(own)
        own.flush()
        return result

    return run_in_transaction(work)


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


def streak_recompute(
    *, user: AbstractBaseUser, study_days, today: datetime.date, batch: ProgressBatch | None = None
) -> tuple[int, int]:
    """Set the current and longest streak and the last study day from the SET of local study days.

    Returns (current, longest).
    """
    study_days = set(study_days)
    current = rules.current_streak(study_days, today=today)
    longest = rules.longest_streak(study_days)
    last_study_date = max(study_days, default=None)

    def write(target: ProgressBatch) -> tuple[int, int]:
        target.user_set.update(
            current_streak=current,
            longest_streak=longest,
            last_study_date=db_date(last_study_date) if last_study_date else None,
        )
        user.current_streak, user.longest_streak = current, longest
        user.last_study_date = last_study_date
        return current, longest

    return _in_batch(user, batch, write)


def badge_award(*, user: AbstractBaseUser, badge: Badge, batch: ProgressBatch | None = None) -> None:
    """Give ``user`` the badge once (an upsert on the unique user+badge key) and record the achievement."""

    def write(target: ProgressBatch) -> None:
        target.badge_ops.append(
            UpdateOne(
                {"user_id": user.pk, "badge_id": badge.code},
                {"$setOnInsert": {"earned_at": target.now}},
                upsert=True,
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
            )
        )
        return paid

    return _in_batch(user, batch, write)


def _rewards_held(user: AbstractBaseUser, periods: set[tuple[str, datetime.date]]) -> dict:
    """The rewards held for ``periods`` ((quest code, period start) pairs): one read, none if empty."""
    if not periods:
        return {}
    rows = QuestProgress.objects.filter(
        user=user, period_start__in={start for _, start in periods}, reward_points__gt=0
    ).values_list("quest_id", "period_start", "reward_points", "time_zone")
    return {
        (code, start): RewardHeld(points=points, time_zone=zone)
        for code, start, points, zone in rows
        if (code, start) in periods
    }


# The study-session reaction ----------------------------------------------------------------


@dataclass(frozen=True)
class StudyChange:
    """The facts of one logged (minutes > 0) or deleted (minutes < 0) study session."""

    session_id: str
    local_date: datetime.date  # in the session's time zone
    time_zone: str  # the zone the session was logged in
    started_at: datetime.datetime  # when the study happened: its points count for that week
    minutes: int
    days_before: Days
    days_after: Days
    distinct_subjects_before: int
    distinct_subjects_after: int


@dataclass(frozen=True)
class StudyOutcome:
    points: int  # paid (or, for a deletion, taken back): minutes within the daily cap, rewards
    level: int
    badges: list[str]
    minutes_unpaid: int = 0  # of a logged session: the minutes over the day's cap


def _metrics(days: Days, distinct_subjects: int) -> dict[str, int]:
    """The badges' metrics over ``days`` (with the paid minutes: see rules.paid_days)."""
    return {
        catalog.SESSION_COUNT: sum(sessions for _, sessions in days.values()),
        catalog.TOTAL_MINUTES: sum(minutes for minutes, _ in days.values()),
        catalog.LONGEST_STREAK: rules.longest_streak(day for day, (_, sessions) in days.items() if sessions),
        catalog.DISTINCT_SUBJECTS: distinct_subjects,
    }


def _quests_record(
    user: AbstractBaseUser,
    change: StudyChange,
    quests: list[Quest],
    paid_before: Days,
    paid_after: Days,
    batch: ProgressBatch,
) -> None:
    """Move the quests of the periods holding the session's local date, while they are open."""
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


def _paid_minutes_change(change: StudyChange, cap: int) -> int:
    """How the change moves the paid minutes of its local day (the daily cap): a log pays the
    difference, a deletion takes it back, so deleting re-pays the day's other minutes."""
    before, _ = change.days_before.get(change.local_date, (0, 0))
    after, _ = change.days_after.get(change.local_date, (0, 0))
    return rules.paid_minutes(after, cap=cap) - rules.paid_minutes(before, cap=cap)


def study_change_record(
    *, user: AbstractBaseUser, change: StudyChange, now: datetime.datetime
) -> StudyOutcome:
    """React to a logged or deleted study session: points, totals, streaks, quests, badges, achievements.

    Each local day pays for at most STUDY_DAILY_CAP_MINUTES of its study; the minutes over it
    count for the totals and streaks, not for points, badges or quests. Must run inside the
    caller's transaction (``run_in_transaction``), which also holds the session write, so the
    session and its consequences commit together or not at all.
    """
    badges, quests = active_catalog()
    batch = ProgressBatch(user=user, now=now)
    today = local_today(user, now)
    logged = change.minutes > 0
    cap = settings.STUDY_DAILY_CAP_MINUTES
    paid_minutes = _paid_minutes_change(change, cap)
    if paid_minutes:
        points_award(
            user=user,
            amount=paid_minutes * rules.POINTS_PER_MINUTE,
            reason=PointsEntry.Reason.STUDY_SESSION if logged else PointsEntry.Reason.STUDY_SESSION_DELETED,
            reference=change.session_id,
            studied_at=change.started_at,
            batch=batch,
        )
    paid_before = rules.paid_days(change.days_before, cap=cap)
    paid_after = rules.paid_days(change.days_after, cap=cap)
    before = _metrics(paid_before, change.distinct_subjects_before)
    after = _metrics(paid_after, change.distinct_subjects_after)
    batch.user_set.update(
        total_minutes=sum(minutes for minutes, _ in change.days_after.values()),
        session_count=after[catalog.SESSION_COUNT],
    )
    streak_recompute(
        user=user, study_days=[d for d, (_, n) in change.days_after.items() if n], today=today, batch=batch
    )
    for milestone in rules.STREAK_RECORD_MILESTONES:
        if before[catalog.LONGEST_STREAK] < milestone <= after[catalog.LONGEST_STREAK]:
            batch.achieve(
                kind=Achievement.Kind.STREAK_RECORD,
                title=f"Longest streak reached {milestone} days",
                reference=f"streak:{milestone}",
            )
    _quests_record(user, change, quests, paid_before, paid_after, batch)
    earned = []
    if logged:  # a badge, once earned, stays; deletions never award one either
        for badge in badges:
            if before[badge.metric] < badge.threshold <= after[badge.metric]:
                badge_award(user=user, badge=badge, batch=batch)
                earned.append(badge.code)
    points = batch.points
    totals = batch.flush()
    unpaid = change.minutes - paid_minutes if logged else 0
    return StudyOutcome(points=points, level=totals["level"], badges=earned, minutes_unpaid=unpaid)
