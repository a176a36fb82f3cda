"""Generated data shaped like StudyMaster's, written into a database our migrations created.

The caller runs ``manage.py migrate`` on the database first, so every collection, index and
partial unique index is the application's own. The documents carry every field of the models,
in the models' field order and with the stored types (a DateField is a BSON date at midnight, a
FK to a code is the code string), in the proportions of a real learner: per user, about 45 study
sessions with one ledger entry each, and a few badges, achievements and quest periods. The users'
points equal their ledger; the maintained totals are left to ``manage.py recompute_totals
--fix`` (the bench runs it), so verify_migration's invariants hold.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

from bson import ObjectId
from pymongo import MongoClient

from accounts.usernames import username_fields

SUBJECTS = [
    "Mathematics",
    "Physics",
    "Chemistry",
    "Biology",
    "History",
    "Spanish",
    "Piano",
    "Linear  Algebra ",
]
TIME_ZONE = "Europe/Berlin"  # every bench user's, and so their sessions' and quest periods'
BADGES = ["first-session", "ten-hours", "week-streak"]
QUESTS = ["daily-30", "weekly-5", "weekly-variety"]
# Per user: sessions + ledger + badges + achievements + quest periods.
PER_USER = 45 + 45 + len(BADGES) + 3 + len(QUESTS)
CHUNK = 5000


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day)


def _user_documents(rng: random.Random, user_id: ObjectId, n: int, now: dt.datetime) -> dict[str, list]:
    sessions, ledger = [], []
    for number in range(45):
        minutes = rng.randint(10, 180)
        started = now - dt.timedelta(days=rng.randint(0, 89), minutes=rng.randint(0, 1400))
        session_id = ObjectId()
        subject = rng.choice(SUBJECTS)
        sessions.append(
            {
                "_id": session_id,
                "user_id": user_id,
                "subject": subject,
                "subject_key": " ".join(subject.split()).casefold(),
                "duration_minutes": minutes,
                "started_at": started,
                "ended_at": started + dt.timedelta(minutes=minutes),
                "time_zone": TIME_ZONE,
                "local_date": _midnight(started.date()),
                "notes": f"chapter {rng.randint(1, 40)} review" if number % 3 else "",
                "points_awarded": minutes,
                "minutes_unpaid": 0,
                "idempotency_key": f"{user_id}-{number}" if number % 2 else None,
                "request_hash": "",  # as logged before requests were hashed: replays are not checked
                "created_at": started + dt.timedelta(minutes=minutes, seconds=2),
            }
        )
        ledger.append(
            {
                "_id": ObjectId(),
                "user_id": user_id,
                "amount": minutes,
                "reason": "study_session",
                "reference": str(session_id),
                "note": "",
                "created_at": started + dt.timedelta(minutes=minutes, seconds=2),
                "studied_at": started,
            }
        )
    points = sum(entry["amount"] for entry in ledger)
    joined = now - dt.timedelta(days=120)
    badges = [
        {"_id": ObjectId(), "user_id": user_id, "badge_id": code, "earned_at": joined + dt.timedelta(days=i)}
        for i, code in enumerate(BADGES)
    ]
    achievements = [
        {
            "_id": ObjectId(),
            "user_id": user_id,
            "kind": kind,
            "title": f"{kind.replace('_', ' ').title()} {i}",
            "reference": f"{kind}:{i}",
            "created_at": joined + dt.timedelta(days=i),
        }
        for i, kind in enumerate(("level_up", "streak_record", "badge_earned"))
    ]
    week = _midnight((now - dt.timedelta(days=now.weekday())).date())
    quests = [
        {
            "_id": ObjectId(),
            "user_id": user_id,
            "quest_id": code,
            "period_start": week,
            "period_end": week + dt.timedelta(days=6),
            "progress": 2,
            "target": 5,
            "completed": False,
            "completed_at": None,
            "reward_points": 0,
            "time_zone": TIME_ZONE,
            "updated_at": now,
        }
        for code in QUESTS
    ]
    user = {
        "_id": user_id,
        "password": "pbkdf2_sha256$1000000$benchsalt$" + "x" * 44,
        "last_login": now - dt.timedelta(hours=rng.randint(1, 72)),
        "is_superuser": False,
        "username": f"bench{n:06d}",
        "first_name": "",
        "last_name": "",
        "email": f"bench{n:06d}@example.com",
        "is_staff": False,
        "is_active": True,
        "date_joined": joined,
        **username_fields(f"bench{n:06d}"),
        "display_name": f"Learner {n}",
        "time_zone": TIME_ZONE,
        "time_zone_changed_at": None,
        "leaderboard_opt_out": n % 20 == 0,
        "points": points,
        "level": 1 + points // 1000,
        "current_streak": rng.randint(0, 10),
        "longest_streak": rng.randint(10, 30),
        "total_minutes": points,
        "session_count": len(sessions),
    }
    return {
        "accounts_user": [user],
        "sessions_app_studysession": sessions,
        "gamification_pointsentry": ledger,
        "gamification_userbadge": badges,
        "gamification_achievement": achievements,
        "gamification_questprogress": quests,
    }


def _chunks(rng: random.Random, users: int, now: dt.datetime) -> Iterator[dict[str, list]]:
    chunk: dict[str, list] = {}
    for n in range(users):
        for name, docs in _user_documents(rng, ObjectId(), n, now).items():
            chunk.setdefault(name, []).extend(docs)
        if sum(map(len, chunk.values())) >= CHUNK:
            yield chunk
            chunk = {}
    if chunk:
        yield chunk


def generate(client: MongoClient, db_name: str, *, documents: int, seed: int = 1) -> dict[str, int]:
    """Add about ``documents`` documents to ``db_name`` (migrated already); return counts per collection."""
    rng = random.Random(seed)
    db = client[db_name]
    now = dt.datetime(2026, 11, 1)
    counts: dict[str, int] = {}
    for chunk in _chunks(rng, max(1, documents // PER_USER), now):
        for name, docs in chunk.items():
            db[name].insert_many(docs, ordered=False)
            counts[name] = counts.get(name, 0) + len(docs)
    return counts
