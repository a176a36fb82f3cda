"""The maintained totals stay equal to what the study sessions and the ledger say, whatever the
order of logs and deletions, and ``recompute_totals`` finds and repairs any drift."""

from __future__ import annotations

import datetime
import random
import threading
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from gamification.invariants import totals_check
from gamification.models import StudyTotal, WeekPoints
from gamification.selectors import current_streak_get
from gamification.tests.factories import assert_points_invariant
from sessions_app.models import StudySession
from sessions_app.services import StudySessionRefused, study_session_delete, study_session_log
from sessions_app.tests.factories import make_user

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
START = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _drift() -> list[str]:
    check = totals_check(connection.database, sessions_model=StudySession)
    return [check.summary()] if check.off else []


def _log(user, started_at, *, minutes=30, subject="Maths", now=None):
    now = now or started_at + datetime.timedelta(minutes=minutes + 5)
    return study_session_log(
        user=user, subject=subject, duration_minutes=minutes, started_at=started_at, now=now
    ).session


def _day(n: int, hour: int = 9) -> datetime.datetime:
    return START + datetime.timedelta(days=n, hours=hour - 9)


def _streaks(user):
    user.refresh_from_db()
    return user.current_streak, user.longest_streak, user.last_study_date


def test_runs_join_split_and_shrink_as_days_come_and_go():
    user = make_user()
    now = _day(10)
    logged = {n: _log(user, _day(n), now=now) for n in (4, 6, 8, 9)}  # runs 4, 6, 8-9
    assert _streaks(user) == (2, 2, _day(9).date())
    logged[5] = _log(user, _day(5), now=now)  # joins 4 and 6: 4-6
    logged[7] = _log(user, _day(7), now=now)  # joins 4-6 and 8-9: 4-9
    assert _streaks(user) == (6, 6, _day(9).date())
    assert not _drift()
    study_session_delete(user=user, session_id=logged[6].pk, now=now)  # inside: 4-5, 7-9
    assert _streaks(user) == (3, 3, _day(9).date())
    study_session_delete(user=user, session_id=logged[9].pk, now=now)  # the latest day: 4-5, 7-8
    assert _streaks(user) == (2, 2, _day(8).date())
    study_session_delete(user=user, session_id=logged[4].pk, now=now)  # the first day of a run
    study_session_delete(user=user, session_id=logged[7].pk, now=now)
    assert _streaks(user) == (1, 1, _day(8).date())  # 5, 8
    assert not _drift()
    study_session_delete(user=user, session_id=logged[8].pk, now=now)  # a lone latest day
    assert _streaks(user) == (1, 1, _day(5).date())
    study_session_delete(user=user, session_id=logged[5].pk, now=now)
    assert _streaks(user) == (0, 0, None)
    assert not StudyTotal.objects.filter(user=user).exists()
    assert not _drift()


def test_a_day_back_dated_into_a_gap_links_to_the_runs_around_it():
    user = make_user()
    now = _day(8, 10)
    for n in (1, 8):
        _log(user, _day(n))
    _log(user, _day(4), now=now)  # alone, between 1 and 8
    _log(user, _day(6), now=now)
    assert _streaks(user) == (1, 1, _day(8).date())
    assert not _drift()
    _log(user, _day(7), now=now)  # 6-8
    _log(user, _day(5), now=now)  # 4-8
    assert _streaks(user) == (5, 5, _day(8).date())
    assert not _drift()


def test_the_stored_streak_is_the_latest_run_and_the_shown_one_ends_after_a_day():
    user = make_user()
    for n in (0, 1, 2):
        _log(user, _day(n))
    assert _streaks(user)[:2] == (3, 3)
    assert current_streak_get(user=user, now=_day(3)) == 3
    assert current_streak_get(user=user, now=_day(4)) == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_sequence_of_logs_and_deletions_keeps_every_total_exact(settings, seed):
    """Random logs (back-dated, over the daily cap, subjects spelled differently, time zones
    changed) and deletions: after each, the totals equal a recompute from the history."""
    settings.STUDY_DAILY_CAP_MINUTES = 150
    rng = random.Random(seed)
    user = make_user(time_zone="Europe/Berlin")
    subjects = ["Maths", "maths", "Physics", "History", "Spanish", " Linear  algebra", "Chemistry"]
    now = START
    logged = []
    for _ in range(70):
        now += datetime.timedelta(hours=rng.choice([0, 1, 5, 20, 30]))
        if logged and rng.random() < 0.3:
            session = logged.pop(rng.randrange(len(logged)))
            study_session_delete(user=user, session_id=session.pk, now=now)
        else:
            if rng.random() < 0.1:
                user.time_zone = rng.choice(["Europe/Berlin", "Pacific/Auckland", "America/Los_Angeles"])
                user.save(update_fields=["time_zone"])
            minutes = rng.choice([15, 45, 90, 200])
            started_at = now - datetime.timedelta(
                minutes=minutes + rng.randrange(0, 7 * 24 * 60 - minutes - 60)
            )
            try:
                logged.append(_log(user, started_at, minutes=minutes, subject=rng.choice(subjects), now=now))
            except StudySessionRefused:
                continue  # an overlap
        assert not _drift(), (len(logged), now)
    assert_points_invariant(user)
    assert user.session_count == len(logged) == StudySession.objects.filter(user=user).count()


def test_recompute_totals_reports_drift_exits_1_and_fix_repairs_it():
    user, other = make_user(), make_user()
    for n in (0, 1, 3):
        _log(user, _day(n))
    _log(other, _day(2))
    out = StringIO()
    call_command("recompute_totals", stdout=out)
    assert out.getvalue() == "Checked 2 users: every total equals their sessions and ledger.\n"
    # Drift of every kind: a month's minutes, a run, the week points, the user's totals.
    month = StudyTotal.objects.get(user=user, key="month:2026-03")
    connection.database[StudyTotal._meta.db_table].update_one(
        {"_id": month.pk}, {"$inc": {"days.02.minutes": 5}}
    )
    StudyTotal.objects.filter(user=user, key__startswith="runend:").delete()
    WeekPoints.objects.filter(user=other).update(points=1)
    type(user).objects.filter(pk=user.pk).update(session_count=9)
    with pytest.raises(CommandError) as refused:
        call_command("recompute_totals", stdout=(out := StringIO()))
    assert refused.value.returncode == 1
    assert str(refused.value) == (
        "2 user(s) have totals that differ from their sessions and ledger. "
        "Run manage.py recompute_totals --fix to rebuild them."
    )
    assert out.getvalue().startswith(
        "Totals that differ from the history: 2 of 2 users differ (month 1, runend 1, session_count 1, week points 1; first: "
    )
    call_command("recompute_totals", "--fix", stdout=(out := StringIO()))
    assert out.getvalue().endswith("Rebuilt the totals of 2 user(s) from their sessions and ledger.\n")
    assert not _drift()
    user.refresh_from_db()
    assert user.session_count == 3


def test_recompute_totals_finds_and_repairs_a_week_row_that_lists_its_user_wrongly():
    user = make_user()
    _log(user, _day(0))
    type(user).objects.filter(pk=user.pk).update(leaderboard_opt_out=True)  # as if the copy failed
    with pytest.raises(CommandError):
        call_command("recompute_totals", stdout=(out := StringIO()))
    assert "(week listing 1; first: " in out.getvalue()
    call_command("recompute_totals", "--fix", stdout=StringIO())
    assert not _drift()
    assert list(WeekPoints.objects.filter(user=user).values_list("listed", flat=True)) == [False]


def test_recompute_totals_says_how_far_it_is_on_long_work(monkeypatch):
    from gamification import invariants

    monkeypatch.setattr(invariants, "PROGRESS_EVERY", 2)
    for _ in range(5):
        make_user()
    err = StringIO()
    call_command("recompute_totals", stdout=StringIO(), stderr=err)
    assert err.getvalue() == "recompute_totals: 2 users checked...\nrecompute_totals: 4 users checked...\n"


def test_month_reads_take_the_summary_of_each_month_a_range_covers_whole():
    from gamification.totals import month_reads

    day = datetime.date
    assert month_reads(day(2026, 1, 15), day(2026, 4, 30), last_study_date=day(2026, 5, 2)) == [
        "month:2026-01",
        "monthsum:2026-02",
        "monthsum:2026-03",
        "monthsum:2026-04",
    ]
    # The range ends mid-month: that month whole only when no study day comes after the range.
    assert month_reads(day(2026, 2, 1), day(2026, 3, 10), last_study_date=day(2026, 3, 11)) == [
        "monthsum:2026-02",
        "month:2026-03",
    ]
    assert month_reads(day(2026, 2, 1), day(2026, 3, 10), last_study_date=day(2026, 3, 10)) == [
        "monthsum:2026-02",
        "monthsum:2026-03",
    ]
    assert month_reads(day(2026, 3, 2), day(2026, 3, 3), last_study_date=None) == ["month:2026-03"]


def test_stats_from_the_month_summaries_equal_the_sessions_for_any_range():
    from collections import Counter

    from sessions_app.selectors import study_stats
    from sessions_app.tests.factories import history_in_bulk

    user = make_user()
    history_in_bulk(user, sessions=160, last_day=datetime.date(2026, 6, 20), per_day=2, day_off_every=4)
    user.refresh_from_db()
    sessions = list(StudySession.objects.filter(user=user))
    ranges = [
        (datetime.date(2026, 1, 1), datetime.date(2026, 6, 20)),  # to the last study day
        (datetime.date(2026, 2, 10), datetime.date(2026, 5, 31)),  # starts mid-month
        (datetime.date(2026, 3, 1), datetime.date(2026, 6, 12)),  # study days follow in June
        (datetime.date(2026, 4, 1), datetime.date(2026, 4, 30)),  # one whole month
        (datetime.date(2026, 5, 5), datetime.date(2026, 5, 6)),
    ]
    for first, last in ranges:
        inside = [session for session in sessions if first <= session.local_date <= last]
        minutes = Counter()
        for session in inside:
            minutes[session.local_date] += session.duration_minutes
        subjects = Counter()
        for session in inside:
            subjects[session.subject] += session.duration_minutes
        stats = study_stats(user=user, date_from=first, date_to=last)
        assert {row["date"]: row["minutes"] for row in stats["by_day"] if row["minutes"]} == {
            day.isoformat(): total for day, total in minutes.items()
        }, (first, last)
        assert {row["subject"]: row["minutes"] for row in stats["by_subject"]} == dict(subjects), (
            first,
            last,
        )


def test_totals_check_ends_before_the_next_user_once_stopped():
    for _ in range(2):
        _log(make_user(), START)
    stop = threading.Event()
    assert totals_check(connection.database, sessions_model=StudySession).users == 2
    stop.set()
    assert totals_check(connection.database, sessions_model=StudySession, stop=stop).users == 0
