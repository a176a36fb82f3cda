"""Study session services: log and delete, each one change of progress with its gamification.

Logging reads only the sessions that could overlap the new one (they start at most
MAX_DURATION_MINUTES before it ends); the game reads its own maintained totals
(``gamification.totals``), so no read grows with the user's history. The reads are made outside
any transaction; the session, its ledger entries and every total are then written together, as
one operation, in a transaction that also writes the user document if, and only if, no other
change of the user's progress came in since the reads (``gamification.services.progress_change``):
otherwise the change is composed again. So the overlap rule and every award hold under concurrency.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass

from bson import ObjectId
from bson.errors import InvalidId
from django.conf import settings
from django.db import IntegrityError, connection
from django.utils import timezone

from accounts.models import User
from gamification.invariants import TotalsCheck, totals_check
from gamification.services import (
    ProgressBatch,
    StudyChange,
    StudyOutcome,
    progress_change,
    study_change_record,
    study_totals_rewrite,
)
from sessions_app.models import MAX_DURATION_MINUTES, StudySession
from studymaster.dates import local_date_at
from studymaster.db import db_datetime, model_document, mongo_call
from studymaster.errors import DomainError

# Clients' clocks drift; an end this little ahead of ours is not "in the future".
CLOCK_SKEW = datetime.timedelta(minutes=1)
MAX_SUBJECT_LENGTH = 100
COLLECTION = StudySession._meta.db_table


class StudySessionRefused(DomainError):
    """The rules refuse this study session; ``field`` and the message say why (400)."""

    def __init__(self, field: str, message: str):
        super().__init__(message, field=field)


class StudySessionKeyReused(DomainError):
    """An Idempotency-Key already used for a different request (422): replaying the first result
    would answer a request that was not sent, and logging it would break the key's promise."""

    status = 422
    code = "idempotency_key_reused"

    def __init__(self):
        super().__init__(
            "This Idempotency-Key was used for a different request. Send a new key with each new study session."
        )


class StudySessionNotFound(DomainError):
    """No study session with that id belongs to the user (malformed ids included): 404, and the
    answer does not tell a foreign id from a missing one."""

    status = 404
    code = "not_found"

    def __init__(self, session_id):
        super().__init__("Not found.")
        self.session_id = session_id


@dataclass(frozen=True)
class StudySessionLogged:
    session: StudySession
    replayed: bool  # True when an Idempotency-Key matched an earlier request
    outcome: StudyOutcome | None = None


def subject_key_for(subject: str) -> str:
    """Trimmed, inner whitespace collapsed, casefolded: how subjects are compared."""
    return " ".join(subject.split()).casefold()


def parse_session_id(session_id) -> ObjectId:
    try:
        return ObjectId(str(session_id))
    except (InvalidId, TypeError):
        raise StudySessionNotFound(session_id) from None


def _overlapping(user: User, started_at: datetime.datetime, ended_at: datetime.datetime) -> dict | None:
    """One of the user's sessions that overlaps [started_at, ended_at), if any. Sessions last at
    most MAX_DURATION_MINUTES, so only those starting that long before the end can: the read
    is bounded by time (one range of the index user, -started_at), however long the history;
    whether each one ends after the start is checked here, a second range the index cannot use."""
    candidates = mongo_call(
        COLLECTION,
        "find",
        {
            "user_id": user.pk,
            "started_at": {
                "$gte": started_at - datetime.timedelta(minutes=MAX_DURATION_MINUTES),
                "$lt": ended_at,
            },
        },
        projection={"started_at": 1, "ended_at": 1, "subject": 1, "idempotency_key": 1, "request_hash": 1},
    )
    naive_start = started_at.astimezone(datetime.UTC).replace(tzinfo=None)  # PyMongo's are naive UTC
    return next((other for other in candidates if other["ended_at"] > naive_start), None)


def _logged_with_key(user: User, idempotency_key: str) -> dict | None:
    """The user's session logged with this Idempotency-Key (unique index), if any."""
    return mongo_call(
        COLLECTION,
        "find_one",
        {"user_id": user.pk, "idempotency_key": idempotency_key},
        projection={"request_hash": 1},
    )


def _replayed(first: dict, asked: str) -> ObjectId:
    """The session a repeated request gets back; StudySessionKeyReused if it asked for another."""
    # Sessions logged before requests were hashed have none: they replay as they did.
    if first.get("request_hash") and first["request_hash"] != asked:
        raise StudySessionKeyReused()
    return first["_id"]


def _is_key_taken(exc: IntegrityError) -> bool:
    """Whether a write failed on the unique (user, Idempotency-Key) index of study sessions."""
    return any(
        "idempotency_key" in str(error.get("keyPattern") or error.get("errmsg"))
        for error in getattr(exc.__cause__, "write_errors", None) or []
    )


def request_hash(
    *, subject: str, duration_minutes: int, started_at: datetime.datetime | None, notes: str
) -> str:
    """What a request with an Idempotency-Key asked for, as sent (``started_at`` may be left
    out), hashed: a repeat must ask for the same, to the millisecond MongoDB keeps."""
    asked = {
        "subject": subject,
        "duration_minutes": duration_minutes,
        "started_at": db_datetime(started_at).astimezone(datetime.UTC).isoformat() if started_at else None,
        "notes": notes,
    }
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode("utf-8", "surrogatepass")).hexdigest()


def _days(number: int) -> str:
    return f"{number} day" if number == 1 else f"{number} days"


def _validate(
    *, subject: str, duration_minutes: int, started_at: datetime.datetime | None, now: datetime.datetime
) -> tuple[str, datetime.datetime]:
    """The subject as stored and the start (default: just ended); StudySessionRefused if not valid."""
    subject = " ".join(subject.split())
    if not 1 <= len(subject) <= MAX_SUBJECT_LENGTH:
        raise StudySessionRefused("subject", f"The subject must be 1-{MAX_SUBJECT_LENGTH} characters.")
    if not 1 <= duration_minutes <= MAX_DURATION_MINUTES:
        raise StudySessionRefused(
            "duration_minutes",
            f"The duration must be a whole number of minutes from 1 to {MAX_DURATION_MINUTES}.",
        )
    if started_at is None:
        started_at = now - datetime.timedelta(minutes=duration_minutes)
    # Truncated here, so the first response equals every replay.
    started_at = db_datetime(started_at)
    # Study is paid once it is done: a session that has not ended yet cannot be logged.
    ended_at = started_at + datetime.timedelta(minutes=duration_minutes)
    if ended_at > now + CLOCK_SKEW:
        raise StudySessionRefused(
            "started_at",
            f"A study session must have ended by now; this one would end at "
            f"{ended_at.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC.",
        )
    max_backdate_days = settings.STUDY_SESSION_MAX_BACKDATE_DAYS
    if ended_at < now - datetime.timedelta(days=max_backdate_days):
        raise StudySessionRefused(
            "started_at",
            f"A study session can be logged at most {_days(max_backdate_days)} after it ended.",
        )
    return subject, started_at


def study_session_log(
    *,
    user: User,
    subject: str,
    duration_minutes: int,
    started_at: datetime.datetime | None = None,
    notes: str = "",
    idempotency_key: str | None = None,
    now: datetime.datetime | None = None,
) -> StudySessionLogged:
    """Log a study session and pay for it: points, streaks, quests, badges, achievements.

    Without ``started_at`` the session has just ended (it started ``duration_minutes`` before
    ``now``). With ``idempotency_key``, a repeat of the same request returns the first session
    (``replayed=True``) and pays nothing. Raises StudySessionRefused for bad input, a session
    that has not ended by ``now`` or ended more than STUDY_SESSION_MAX_BACKDATE_DAYS before it,
    or an overlap with another of the user's sessions; StudySessionKeyReused for a key the user
    sent before with a different request.
    """
    asked = (
        request_hash(subject=subject, duration_minutes=duration_minutes, started_at=started_at, notes=notes)
        if idempotency_key is not None
        else ""
    )
    now = db_datetime(now or timezone.now())
    subject, started_at = _validate(
        subject=subject, duration_minutes=duration_minutes, started_at=started_at, now=now
    )
    subject_key = subject_key_for(subject)
    session = StudySession(
        id=ObjectId(),
        user=user,
        subject=subject,
        subject_key=subject_key,
        duration_minutes=duration_minutes,
        started_at=started_at,
        ended_at=started_at + datetime.timedelta(minutes=duration_minutes),
        time_zone=user.time_zone,
        local_date=local_date_at(user, started_at),
        notes=notes,
        idempotency_key=idempotency_key,
        request_hash=asked,
        created_at=now,
    )

    def compose(batch: ProgressBatch) -> tuple[ObjectId, StudyOutcome | None]:
        other = _overlapping(user, session.started_at, session.ended_at)
        if other is not None:
            # A repeated request overlaps its first session, or another one: it is a replay all the same.
            same_key = idempotency_key is not None and other.get("idempotency_key") == idempotency_key
            first = (
                other if same_key else _logged_with_key(user, idempotency_key) if idempotency_key else None
            )
            if first is not None:
                return _replayed(first, asked), None
            raise StudySessionRefused(
                "started_at",
                f"This study session overlaps another one ({other['subject']}, "
                f"{other['started_at']:%Y-%m-%d %H:%M}-{other['ended_at']:%H:%M} UTC).",
            )
        outcome = study_change_record(user=user, change=_logged_change(session), now=now, batch=batch)
        session.points_awarded, session.minutes_unpaid = outcome.points, outcome.minutes_unpaid
        batch.write_first(COLLECTION, model_document(session))
        return session.pk, outcome

    try:
        saved_id, outcome = progress_change(user, now, compose)
    except IntegrityError as exc:
        # The key is taken: by a concurrent request that committed first, or by an earlier one
        # whose session this one does not overlap ("just ended" is later the second time).
        first = _logged_with_key(user, idempotency_key) if idempotency_key and _is_key_taken(exc) else None
        if first is None:
            raise
        saved_id, outcome = _replayed(first, asked), None
    if outcome is None:
        return StudySessionLogged(session=StudySession.objects.get(pk=saved_id), replayed=True)
    return StudySessionLogged(session=session, replayed=False, outcome=outcome)


def _logged_change(session: StudySession) -> StudyChange:
    """The facts of logging ``session``, for the game."""
    return StudyChange(
        session_id=str(session.pk),
        local_date=session.local_date,
        time_zone=session.time_zone,
        started_at=session.started_at,
        minutes=session.duration_minutes,
        subject_key=session.subject_key,
        subject=session.subject,
    )


def _deleted_change(deleted: dict, user: User) -> StudyChange:
    """The facts of deleting the session stored as ``deleted``, for the game."""
    return StudyChange(
        session_id=str(deleted["_id"]),
        local_date=deleted["local_date"].date(),
        # Every session has one since sessions_app.0003; a document copied in from an older
        # database without migrating it would not, and its user's zone is the best guess.
        time_zone=deleted.get("time_zone") or user.time_zone,
        started_at=deleted["started_at"].replace(tzinfo=datetime.UTC),  # PyMongo's are naive UTC
        minutes=-deleted["duration_minutes"],
        subject_key=deleted["subject_key"],
        subject=deleted["subject"],
    )


def study_session_delete(*, user: User, session_id, now: datetime.datetime | None = None) -> StudyOutcome:
    """Delete one of the user's study sessions and take back what it paid.

    Its points go back through a negative ledger entry, as far as they leave the day's paid
    minutes; a quest reward goes back when the deletion drops a period below target while it is
    open in the time zone the reward was earned in; badges stay; streaks and totals are
    recomputed from the remaining sessions. Raises StudySessionNotFound.
    """
    now = now or timezone.now()
    oid = parse_session_id(session_id)

    def compose(batch: ProgressBatch) -> StudyOutcome:
        deleted = mongo_call(
            COLLECTION,
            "find_one",
            {"_id": oid, "user_id": user.pk},
            # By _id alone, the owner checked on that one document: with both equalities the
            # embedded server picks no index and scans every user's sessions (2,000 of 2,000).
            hint="_id_",
            projection=[
                "local_date",
                "time_zone",
                "started_at",
                "duration_minutes",
                "subject_key",
                "subject",
            ],
        )
        if deleted is None:
            raise StudySessionNotFound(session_id)
        # Deleted by _id alone: the owner is checked above, and a change since (a concurrent
        # delete of the same session) fails the write's version check.
        batch.delete_first(COLLECTION, oid)
        return study_change_record(user=user, change=_deleted_change(deleted, user), now=now, batch=batch)

    return progress_change(user, now, compose)


def study_totals_recompute(*, fix: bool = False, progress=None) -> TotalsCheck:
    """Check every user's maintained totals against their study sessions and ledger
    (``manage.py recompute_totals``); with ``fix``, rebuild those of each user that differs,
    each in a transaction of its own. ``progress(users)`` hears how far the check is."""

    def repair(user_id) -> None:
        study_totals_rewrite(user_id=user_id, sessions_model=StudySession)

    return totals_check(
        connection.database, sessions_model=StudySession, repair=repair if fix else None, progress=progress
    )
