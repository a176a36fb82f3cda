"""Realistic demo data: a few dozen learners in several time zones, with weeks of study.

Every study session goes through ``study_session_log`` with a clock (``now``) set just
after the session ended, so all the rules apply as they would have at the time: points,
streaks, quests of the then-open periods, badges, achievements, and the back-dating limit
(each is logged minutes after it ended).
"""

import datetime
import random
import zoneinfo

from django.db import connection
from django.utils import timezone

from accounts.models import User
from accounts.usernames import username_fields
from gamification.invariants import ledger_check
from gamification.models import Achievement, PointsEntry, QuestProgress, UserBadge
from gamification.services import points_adjust
from sessions_app.models import StudySession
from sessions_app.services import study_session_delete, study_session_log
from studymaster.dates import local_today

TIME_ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Sao_Paulo",
]
SUBJECTS = [
    "Mathematics",
    "Physics",
    "Chemistry",
    "Biology",
    "History",
    "English literature",
    "Spanish",
    "Computer science",
    "Economics",
    "Music theory",
]
DEMO_PASSWORD = "demo-password-123"  # noqa: S105 - published in the README for the demo only
DEMO_DAYS = 28


def _learner_sessions(rng: random.Random, learner: User, now: datetime.datetime):
    """(started_at, minutes, subject) for one learner's last DEMO_DAYS days, oldest first."""
    tz = zoneinfo.ZoneInfo(learner.time_zone)
    diligence = rng.choice([0.35, 0.6, 0.8, 0.95])  # chance of studying on a given day
    subjects = rng.sample(SUBJECTS, rng.randint(2, 7))
    today = local_today(learner, now)
    for offset in range(DEMO_DAYS, -1, -1):
        if rng.random() > diligence:
            continue
        day = today - datetime.timedelta(days=offset)
        start = datetime.datetime.combine(day, datetime.time(rng.choice([7, 9, 14, 17, 19])), tzinfo=tz)
        for _ in range(rng.choice([1, 1, 2, 3])):
            minutes = rng.choice([15, 20, 25, 30, 45, 60, 90])
            start += datetime.timedelta(minutes=rng.randint(0, 40))
            if start + datetime.timedelta(minutes=minutes) > now:
                return
            # Subjects spelled a little differently now and then: one subject all the same.
            subject = rng.choice(subjects)
            yield start, minutes, subject.lower() if rng.random() < 0.1 else subject
            start += datetime.timedelta(minutes=minutes + rng.randint(5, 60))


def seed_demo(*, users: int = 36, seed: int = 7) -> dict:
    """Create ``users`` learners with their study history and one staff user; return counts."""
    rng = random.Random(seed)
    now = timezone.now()
    admin = User.objects.create_superuser("admin", "admin@demo.studymaster.local", DEMO_PASSWORD)
    learners = [
        User(  # bulk_create skips save(), which derives the username's keys: give them here
            username=f"learner{n:02d}",
            **username_fields(f"learner{n:02d}"),
            email=f"learner{n:02d}@demo.studymaster.local",
            display_name=f"Learner {n:02d}",
            time_zone=rng.choice(TIME_ZONES),
            leaderboard_opt_out=(n % 11 == 0),
        )
        for n in range(1, users + 1)
    ]
    for learner in learners:
        learner.set_password(DEMO_PASSWORD)
    User.objects.bulk_create(learners)
    for n, learner in enumerate(User.objects.filter(is_staff=False).order_by("username")):
        logged = []
        for started_at, minutes, subject in _learner_sessions(rng, learner, now):
            ended = started_at + datetime.timedelta(minutes=minutes)
            result = study_session_log(
                user=learner,
                subject=subject,
                duration_minutes=minutes,
                started_at=started_at,
                notes=rng.choice(["", "", "Past papers", "Flashcards", "Chapter review"]),
                idempotency_key=f"demo-{learner.username}-{len(logged)}",
                now=min(now, ended + datetime.timedelta(minutes=rng.randint(1, 30))),
            )
            logged.append(result.session)
        if logged and n % 5 == 0:  # a mistaken entry, taken back: points and any open-period reward
            study_session_delete(user=learner, session_id=rng.choice(logged).pk, now=now)
        if n % 9 == 0:
            points_adjust(
                user=learner, amount=100, note="Demo: study group prize", staff_username=admin.username
            )
    _check_points_invariant()
    return {
        "users": User.objects.count(),
        "study sessions": StudySession.objects.count(),
        "ledger entries": PointsEntry.objects.count(),
        "badges earned": UserBadge.objects.count(),
        "quests completed": QuestProgress.objects.filter(completed=True).count(),
        "achievements": Achievement.objects.count(),
    }


def _check_points_invariant() -> None:
    """Every user's points equal the sum of their ledger (gamification.invariants, as verify checks)."""
    broken = ledger_check(connection.database).off_ledger
    if broken:
        usernames = {str(pk): username for pk, username in User.objects.values_list("pk", "username")}
        raise AssertionError(f"points != sum(ledger) for {', '.join(usernames[pk] for pk in broken)}")
