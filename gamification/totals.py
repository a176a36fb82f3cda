"""The maintained totals of a user's study: their keys, how one change moves them, and what they
must hold, computed from the study sessions and the ledger alone.

The documents are described on :class:`gamification.models.StudyTotal` and
:class:`gamification.models.WeekPoints`. Everything here is pure: the services read the few
documents a change needs (``keys_for_change``), call these functions and write what they return;
``manage.py recompute_totals`` and verify compare the stored documents with
:func:`expected_totals`, which rebuilds them from the history with the same functions, so
that a maintained total and a recomputed one are equal document for document.

A streak run is kept twice, by its first day (``run:``) and by its last (``runend:``), each
pointing to its neighbour run, so that logging or deleting a day finds the runs around it by
key: no read scans the study days. Only a deletion inside a run (neither its first nor its
last day) searches, among the runs that start within the longest streak before that day.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from gamification import rules
from studymaster.db import db_date

MONTH, MONTH_SUM, SUBJECT, RUN, RUN_END, SUMMARY = (
    "month:",
    "monthsum:",
    "subject:",
    "run:",
    "runend:",
    "summary",
)
ONE_DAY = datetime.timedelta(days=1)

Days = dict[datetime.date, tuple[int, int]]  # local date -> (minutes, sessions)
Docs = dict[str, dict]  # key -> the stored fields (without _id, user_id and key)


def month_key(day: datetime.date) -> str:
    return f"{MONTH}{day:%Y-%m}"


def month_sum_key(day: datetime.date) -> str:
    return f"{MONTH_SUM}{day:%Y-%m}"


def subject_key_of(subject_key: str) -> str:
    return f"{SUBJECT}{subject_key}"


def run_key(start: datetime.date) -> str:
    return f"{RUN}{start.isoformat()}"


def run_end_key(end: datetime.date) -> str:
    return f"{RUN_END}{end.isoformat()}"


def week_start(moment: datetime.datetime) -> datetime.date:
    """The Monday (UTC) of the ISO week of ``moment`` (naive: UTC, as PyMongo reads it): the
    weekly leaderboard's week."""
    utc = moment.replace(tzinfo=datetime.UTC) if moment.tzinfo is None else moment.astimezone(datetime.UTC)
    day = utc.date()
    return day - datetime.timedelta(days=day.weekday())


def stored_date(value) -> datetime.date | None:
    """A stored date (a BSON datetime at midnight) as a date."""
    return value.date() if isinstance(value, datetime.datetime) else value


def _stored(day: datetime.date | None):
    return db_date(day) if day is not None else None


# -- days ----------------------------------------------------------------------------------------
def _day_field(day: datetime.date) -> str:
    return f"{day.day:02d}"


def month_days(key: str, month: dict) -> Iterator[tuple[datetime.date, dict]]:
    """(local date, totals) of each day the month document ``key`` holds."""
    prefix = key.removeprefix(MONTH)
    for day_field, entry in month.get("days", {}).items():
        yield datetime.date.fromisoformat(f"{prefix}-{day_field}"), entry


def day_entry(docs: Docs, day: datetime.date) -> dict | None:
    """The stored totals of one local day (``{minutes, sessions, subjects}``), or None."""
    return (docs.get(month_key(day)) or {}).get("days", {}).get(_day_field(day))


def days_between(docs: Docs, first: datetime.date, last: datetime.date) -> Days:
    """(minutes, sessions) of each study day from ``first`` to ``last`` in ``docs``."""
    days = {}
    day = first
    while day <= last:
        entry = day_entry(docs, day)
        if entry:
            days[day] = (entry["minutes"], entry["sessions"])
        day += ONE_DAY
    return days


def day_changed(entry: dict | None, *, minutes: int, subject_key: str, subject: str) -> dict | None:
    """A day's totals after one study session of ``minutes`` is logged (> 0) or deleted (< 0),
    in the one canonical form (subjects by key, spellings by text); None once no session is left."""
    step = 1 if minutes > 0 else -1
    entry = entry or {"minutes": 0, "sessions": 0, "subjects": []}
    subjects = {item["key"]: item for item in entry["subjects"]}
    item = subjects.get(subject_key) or {"key": subject_key, "minutes": 0, "spellings": []}
    spellings = dict(tuple(pair) for pair in item["spellings"])
    spellings[subject] = spellings.get(subject, 0) + step
    spellings = {text: count for text, count in spellings.items() if count > 0}
    subjects[subject_key] = {
        "key": subject_key,
        "minutes": item["minutes"] + minutes,
        "spellings": [[text, spellings[text]] for text in sorted(spellings)],
    }
    if not spellings:
        del subjects[subject_key]
    sessions = entry["sessions"] + step
    if sessions <= 0:
        return None
    return {
        "minutes": entry["minutes"] + minutes,
        "sessions": sessions,
        "subjects": [subjects[key] for key in sorted(subjects)],
    }


def month_with(month: dict | None, day: datetime.date, entry: dict | None) -> dict | None:
    """A month document's fields with ``day`` set to ``entry`` (removed when None); None if empty."""
    days = dict((month or {}).get("days", {}))
    if entry is None:
        days.pop(_day_field(day), None)
    else:
        days[_day_field(day)] = entry
    return {"days": {name: days[name] for name in sorted(days)}} if days else None


def month_sum(month: dict | None) -> dict | None:
    """The month's summary document, derived from its month document alone: ``minutes`` by
    two-digit day, and the month's ``subjects`` merged (same form as a day's). A read of a
    whole month takes it instead of the month document: a tenth of the BSON for the server to
    decode and send (docs/gamification.md#study-totals)."""
    if not month or not month.get("days"):
        return None
    subjects: dict[str, dict] = {}
    for entry in month["days"].values():
        for item in entry["subjects"]:
            merged = subjects.setdefault(item["key"], {"minutes": 0, "spellings": Counter()})
            merged["minutes"] += item["minutes"]
            for text, count in item["spellings"]:
                merged["spellings"][text] += count
    return {
        "minutes": {name: entry["minutes"] for name, entry in month["days"].items()},
        "subjects": [
            {
                "key": key,
                "minutes": subjects[key]["minutes"],
                "spellings": [
                    [text, subjects[key]["spellings"][text]] for text in sorted(subjects[key]["spellings"])
                ],
            }
            for key in sorted(subjects)
        ],
    }


def month_reads(
    date_from: datetime.date, date_to: datetime.date, *, last_study_date: datetime.date | None
) -> list[str]:
    """The keys a read of the study days ``date_from``..``date_to`` needs: each month the range
    covers whole by its summary, the others (partly covered) by their month document. A month
    counts as covered to its end when no study day comes after ``date_to`` (``last_study_date``
    is not later), so the range up to today reads the current month's summary too."""
    keys = []
    first = date_from.replace(day=1)
    while first <= date_to:
        following = (first + datetime.timedelta(days=31)).replace(day=1)
        whole_end = following - ONE_DAY <= date_to or (
            last_study_date is not None and last_study_date <= date_to
        )
        keys.append(month_sum_key(first) if first >= date_from and whole_end else month_key(first))
        first = following
    return keys


def range_totals(
    rows: Iterable[dict], date_from: datetime.date, date_to: datetime.date
) -> tuple[dict[datetime.date, int], list[dict]]:
    """Minutes by study day and the subject items (``{key, minutes, spellings}``, a key may come
    more than once) of ``date_from``..``date_to``, from the documents of :func:`month_reads`."""
    minutes, subjects = {}, []
    for row in rows:
        whole = row["key"].startswith(MONTH_SUM)
        prefix = row["key"].removeprefix(MONTH_SUM if whole else MONTH)
        year, month = int(prefix[:4]), int(prefix[5:7])
        if whole:
            for name, value in row.get("minutes", {}).items():
                day = datetime.date(year, month, int(name))
                if date_from <= day <= date_to:
                    minutes[day] = value
            subjects.extend(row.get("subjects", []))
            continue
        for name, entry in row.get("days", {}).items():
            day = datetime.date(year, month, int(name))
            if date_from <= day <= date_to:
                minutes[day] = entry["minutes"]
                subjects.extend(entry["subjects"])
    return minutes, subjects


# -- the summary ---------------------------------------------------------------------------------
@dataclass
class Summary:
    paid_minutes: int = 0
    subjects: int = 0
    run_lengths: Counter = field(default_factory=Counter)

    @classmethod
    def of(cls, fields: dict | None) -> Summary:
        fields = fields or {}
        lengths = Counter({length: runs for length, runs in fields.get("run_lengths", [])})
        return cls(fields.get("paid_minutes", 0), fields.get("subjects", 0), lengths)

    @property
    def empty(self) -> bool:
        return not (self.paid_minutes or self.subjects or self.longest)

    @property
    def longest(self) -> int:
        return max((length for length, runs in self.run_lengths.items() if runs > 0), default=0)

    def document(self) -> dict:
        lengths = sorted((length for length, runs in self.run_lengths.items() if runs > 0), reverse=True)
        return {
            "paid_minutes": self.paid_minutes,
            "subjects": self.subjects,
            "run_lengths": [[length, self.run_lengths[length]] for length in lengths],
        }


# -- streak runs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Streaks:
    """What the user document keeps: the latest run's length, the longest, the latest study day."""

    current: int = 0
    longest: int = 0
    last: datetime.date | None = None


@dataclass
class Writes:
    """What a change does to the totals: ``put`` (a whole document), ``set`` (some fields of an
    existing one), ``delete``, by key, in order."""

    operations: list[tuple[str, str, dict | None]] = field(default_factory=list)

    def put(self, key: str, fields: dict) -> None:
        self.operations.append(("put", key, fields))

    def set(self, key: str, fields: dict) -> None:
        self.operations.append(("set", key, fields))

    def delete(self, key: str) -> None:
        self.operations.append(("delete", key, None))


def _length(start: datetime.date, end: datetime.date) -> int:
    return (end - start).days + 1


def _link(writes: Writes, *, prev_end, next_start) -> None:
    """Point the runs ending at ``prev_end`` and starting at ``next_start`` at their new neighbours."""
    if prev_end is not None:
        writes.set(run_end_key(prev_end), {"next_start": _stored(next_start)})
    if next_start is not None:
        writes.set(run_key(next_start), {"prev_end": _stored(prev_end)})


def _put_run(writes: Writes, start, end, *, prev_end, next_start) -> None:
    writes.put(run_key(start), {"end": _stored(end), "prev_end": _stored(prev_end)})
    writes.put(run_end_key(end), {"start": _stored(start), "next_start": _stored(next_start)})


def streaks_after_new_day(
    day: datetime.date, docs: Docs, *, streaks: Streaks, lengths: Counter, writes: Writes
) -> Streaks:
    """``day`` became a study day: join it to the runs that end the day before and start the day
    after. ``docs`` holds those runs' documents, and, when ``day`` comes before the latest study
    day, the run documents of the days between them (``keys_for_change``)."""
    left = docs.get(run_end_key(day - ONE_DAY))
    right = docs.get(run_key(day + ONE_DAY))
    start = stored_date(left["start"]) if left else day
    end = stored_date(right["end"]) if right else day
    if left and right:
        writes.delete(run_end_key(day - ONE_DAY))
        writes.delete(run_key(day + ONE_DAY))
        writes.set(run_key(start), {"end": _stored(end)})
        writes.set(run_end_key(end), {"start": _stored(start)})
        lengths[_length(start, day - ONE_DAY)] -= 1
        lengths[_length(day + ONE_DAY, end)] -= 1
    elif left:
        writes.delete(run_end_key(day - ONE_DAY))
        writes.set(run_key(start), {"end": _stored(day)})
        next_start = stored_date(left.get("next_start"))
        writes.put(run_end_key(day), {"start": _stored(start), "next_start": _stored(next_start)})
        if next_start is not None:
            writes.set(run_key(next_start), {"prev_end": _stored(day)})
        lengths[_length(start, day - ONE_DAY)] -= 1
    elif right:
        writes.delete(run_key(day + ONE_DAY))
        prev_end = stored_date(right.get("prev_end"))
        writes.put(run_key(day), {"end": _stored(end), "prev_end": _stored(prev_end)})
        writes.set(run_end_key(end), {"start": _stored(day)})
        if prev_end is not None:
            writes.set(run_end_key(prev_end), {"next_start": _stored(day)})
        lengths[_length(day + ONE_DAY, end)] -= 1
    else:
        # Between the run before and the run after: the latest run, when the day is the latest.
        prev_end, next_start = streaks.last, None
        if streaks.last is not None and day < streaks.last:
            prev_end = None
            following = day + 2 * ONE_DAY
            while following <= streaks.last and run_key(following) not in docs:
                following += ONE_DAY
            if following <= streaks.last:
                next_start = following
                prev_end = stored_date(docs[run_key(following)].get("prev_end"))
        _put_run(writes, day, day, prev_end=prev_end, next_start=next_start)
        if prev_end is not None:
            writes.set(run_end_key(prev_end), {"next_start": _stored(day)})
        if next_start is not None:
            writes.set(run_key(next_start), {"prev_end": _stored(day)})
    lengths[_length(start, end)] += 1
    latest = streaks.last is None or end >= streaks.last
    return Streaks(
        current=_length(start, end) if latest else streaks.current,
        longest=max((length for length, runs in lengths.items() if runs > 0), default=0),
        last=max(day, streaks.last) if streaks.last else day,
    )


def streaks_after_day_gone(
    day: datetime.date,
    docs: Docs,
    *,
    streaks: Streaks,
    lengths: Counter,
    writes: Writes,
    more: Callable[[str, str], Docs],
) -> Streaks:
    """``day`` is no study day any more: shorten or split its run. ``docs`` holds the run
    documents keyed by ``day``; ``more(low, high)`` reads the documents with keys from ``low``
    to ``high``, for the two cases that need another read: a day inside a run (the run that
    contains it), and the latest run of a single day (the run before it, now the latest)."""
    first = docs.get(run_key(day))
    last = docs.get(run_end_key(day))
    current, last_day = streaks.current, streaks.last
    if first and last:
        prev_end, next_start = stored_date(first.get("prev_end")), stored_date(last.get("next_start"))
        writes.delete(run_key(day))
        writes.delete(run_end_key(day))
        _link(writes, prev_end=prev_end, next_start=next_start)
        lengths[1] -= 1
        if day == streaks.last:
            last_day, current = prev_end, 0
            if prev_end is not None:
                before = more(run_end_key(prev_end), run_end_key(prev_end)).get(run_end_key(prev_end))
                current = _length(stored_date(before["start"]), prev_end) if before else 0
    elif first:
        end, prev_end = stored_date(first["end"]), stored_date(first.get("prev_end"))
        writes.delete(run_key(day))
        writes.put(run_key(day + ONE_DAY), {"end": _stored(end), "prev_end": _stored(prev_end)})
        writes.set(run_end_key(end), {"start": _stored(day + ONE_DAY)})
        if prev_end is not None:
            writes.set(run_end_key(prev_end), {"next_start": _stored(day + ONE_DAY)})
        lengths[_length(day, end)] -= 1
        lengths[_length(day + ONE_DAY, end)] += 1
        if end == streaks.last:
            current = _length(day + ONE_DAY, end)
    elif last:
        start, next_start = stored_date(last["start"]), stored_date(last.get("next_start"))
        writes.delete(run_end_key(day))
        writes.set(run_key(start), {"end": _stored(day - ONE_DAY)})
        writes.put(run_end_key(day - ONE_DAY), {"start": _stored(start), "next_start": _stored(next_start)})
        if next_start is not None:
            writes.set(run_key(next_start), {"prev_end": _stored(day - ONE_DAY)})
        lengths[_length(start, day)] -= 1
        lengths[_length(start, day - ONE_DAY)] += 1
        if day == streaks.last:
            last_day, current = day - ONE_DAY, _length(start, day - ONE_DAY)
    else:
        # Inside a run: it starts within the longest streak before the day.
        span = max(streaks.longest, 1)
        window = more(run_key(day - span * ONE_DAY), run_key(day - ONE_DAY))
        containing = [
            (stored_date(fields["end"]), key)
            for key, fields in window.items()
            if key.startswith(RUN) and stored_date(fields["end"]) > day
        ]
        if not containing:
            return streaks  # no run holds the day: nothing to split (recompute_totals repairs)
        end, key = min(containing)
        start = datetime.date.fromisoformat(key.removeprefix(RUN))
        writes.set(run_key(start), {"end": _stored(day - ONE_DAY)})
        writes.put(
            run_end_key(day - ONE_DAY), {"start": _stored(start), "next_start": _stored(day + ONE_DAY)}
        )
        writes.put(run_key(day + ONE_DAY), {"end": _stored(end), "prev_end": _stored(day - ONE_DAY)})
        writes.set(run_end_key(end), {"start": _stored(day + ONE_DAY)})
        lengths[_length(start, end)] -= 1
        lengths[_length(start, day - ONE_DAY)] += 1
        lengths[_length(day + ONE_DAY, end)] += 1
        if end == streaks.last:
            current = _length(day + ONE_DAY, end)
    longest = max((length for length, runs in lengths.items() if runs > 0), default=0)
    return Streaks(current=current, longest=longest, last=last_day)


# -- what a change reads -------------------------------------------------------------------------
def keys_for_change(
    *, day: datetime.date, subject_key: str, logged: bool, last_study_date: datetime.date | None
) -> list[str]:
    """The documents a change on local ``day`` reads, all by key: the months of its ISO week
    (the weekly quests) and of the days around it, the subject, the summary, and the runs that
    end the day before or start the day after (logged), or start or end that day (deleted).
    When a logged day comes before the latest study day, also the runs that may start between
    them: at most the days a session may be back-dated, so bounded by time."""
    monday = day - datetime.timedelta(days=day.weekday())
    span = [monday - ONE_DAY, monday + datetime.timedelta(days=7)]
    keys = {month_key(span[0]), month_key(span[1]), subject_key_of(subject_key), SUMMARY}
    if logged:
        keys |= {run_end_key(day - ONE_DAY), run_key(day + ONE_DAY)}
        if last_study_date is not None and day < last_study_date:
            following = day + 2 * ONE_DAY
            while following <= last_study_date:
                keys.add(run_key(following))
                following += ONE_DAY
    else:
        keys |= {run_key(day), run_end_key(day)}
    return sorted(keys)


# -- everything, from the history ----------------------------------------------------------------
@dataclass(frozen=True)
class SessionFacts:
    """What the totals need of one study session."""

    local_date: datetime.date
    minutes: int
    subject_key: str
    subject: str


@dataclass(frozen=True)
class LedgerFacts:
    """What the totals need of one ledger entry."""

    reason: str
    amount: int
    studied_at: datetime.datetime


STUDY_REASONS = ("study_session", "study_session_deleted")  # the entries that pay minutes
# What the weekly board shows of a user and filters on: each WeekPoints keeps a copy (``listing``).
LISTING_FIELDS = ("username", "is_active", "leaderboard_opt_out")


def listing(user: Mapping) -> dict:
    """The fields of ``WeekPoints`` copied from the user document ``user`` (its LISTING_FIELDS):
    the username, and whether the weekly board lists the user (active, not opted out)."""
    return {
        "username": user["username"],
        "listed": bool(user.get("is_active", True)) and not user.get("leaderboard_opt_out", False),
    }


@dataclass(frozen=True)
class Expected:
    """What a user's maintained totals must hold."""

    documents: Docs  # StudyTotal key -> fields
    week_points: dict[datetime.date, int]  # week start -> points (weeks that net to 0 left out)
    user: dict  # the user document's progress fields


def expected_totals(sessions: Iterable[SessionFacts], ledger: Iterable[LedgerFacts]) -> Expected:
    """Every maintained total of one user, computed from their study sessions and ledger only."""
    months: dict[str, dict | None] = {}
    subjects: dict[str, dict] = {}
    total_minutes = session_count = 0
    for session in sessions:
        key = month_key(session.local_date)
        entry = day_changed(
            day_entry({key: months.get(key) or {}}, session.local_date),
            minutes=session.minutes,
            subject_key=session.subject_key,
            subject=session.subject,
        )
        months[key] = month_with(months.get(key), session.local_date, entry)
        subject = subjects.setdefault(session.subject_key, {"sessions": 0, "minutes": 0})
        subject["sessions"] += 1
        subject["minutes"] += session.minutes
        total_minutes += session.minutes
        session_count += 1
    documents: Docs = {key: months[key] for key in sorted(months) if months[key]}
    study_days = sorted(day for key, month in documents.items() for day, _ in month_days(key, month))
    for key in list(documents):
        documents[MONTH_SUM + key.removeprefix(MONTH)] = month_sum(documents[key])
    runs = _runs(study_days)
    summary = Summary(subjects=len(subjects))
    for index, (start, end) in enumerate(runs):
        prev_end = runs[index - 1][1] if index else None
        next_start = runs[index + 1][0] if index + 1 < len(runs) else None
        documents[run_key(start)] = {"end": _stored(end), "prev_end": _stored(prev_end)}
        documents[run_end_key(end)] = {"start": _stored(start), "next_start": _stored(next_start)}
        summary.run_lengths[_length(start, end)] += 1
    for subject_key, fields in subjects.items():
        documents[subject_key_of(subject_key)] = fields
    points = 0
    weeks: Counter = Counter()
    for entry in ledger:
        points += entry.amount
        weeks[week_start(entry.studied_at)] += entry.amount
        if entry.reason in STUDY_REASONS:
            summary.paid_minutes += entry.amount // rules.POINTS_PER_MINUTE
    if not summary.empty:
        documents[SUMMARY] = summary.document()
    latest = runs[-1] if runs else None
    user = {
        "points": points,
        "level": rules.level_for_points(points),
        "current_streak": _length(*latest) if latest else 0,
        "longest_streak": summary.longest,
        "total_minutes": total_minutes,
        "session_count": session_count,
        "last_study_date": latest[1] if latest else None,
    }
    return Expected(documents, {week: points for week, points in weeks.items() if points}, user)


def _runs(days: list[datetime.date]) -> list[tuple[datetime.date, datetime.date]]:
    """The runs of consecutive days in the sorted ``days``, as (first, last)."""
    runs: list[list[datetime.date]] = []
    for day in days:
        if runs and runs[-1][1] + ONE_DAY == day:
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return [(start, end) for start, end in runs]


def differences(expected: Expected, documents: Docs, week_points: dict, user: dict) -> list[str]:
    """What of a user's stored totals differs from ``expected``: the kinds of documents
    (``month``, ``monthsum``, ``subject``, ``run``, ``runend``, ``summary``), ``week points``, and the user
    document's fields by name. ``documents`` and ``user`` are as read (dates as datetimes)."""
    kinds = set()
    for key in set(expected.documents) | set(documents):
        if expected.documents.get(key) != documents.get(key):
            kinds.add(key.split(":", 1)[0])
    if expected.week_points != {week: points for week, points in week_points.items() if points}:
        kinds.add("week points")
    for name, value in expected.user.items():
        stored = user.get(name)
        if name == "last_study_date":
            stored = stored_date(stored)
        elif stored is None:
            stored = 0
        if stored != value:
            kinds.add(name)
    return sorted(kinds)
