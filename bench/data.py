"""Generated data shaped like StudyMaster's: users, study sessions and their points ledger."""

from __future__ import annotations

import datetime as dt
import random

from bson import ObjectId
from pymongo import MongoClient

SUBJECTS = ["Mathematics", "Physics", "Chemistry", "Biology", "History", "Spanish", "Piano", "Algorithms"]


def generate(client: MongoClient, db_name: str, *, documents: int, seed: int = 1) -> dict[str, int]:
    """Fill ``db_name`` with about ``documents`` documents: 1% users, the rest sessions + ledger."""
    rng = random.Random(seed)
    db = client[db_name]
    users = max(1, documents // 100)
    sessions = (documents - users) // 2
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    user_ids = [ObjectId() for _ in range(users)]
    points = dict.fromkeys(user_ids, 0)
    session_docs, ledger_docs = [], []
    for n in range(sessions):
        user_id = user_ids[n % users]
        minutes = rng.randint(10, 180)
        started = now - dt.timedelta(days=rng.randint(0, 29), minutes=rng.randint(0, 1400))
        session_id = ObjectId()
        session_docs.append(
            {
                "_id": session_id,
                "user_id": user_id,
                "subject": rng.choice(SUBJECTS),
                "subject_key": "x",
                "duration_minutes": minutes,
                "started_at": started,
                "ended_at": started + dt.timedelta(minutes=minutes),
                "local_date": started.date().isoformat(),
                "notes": f"chapter {rng.randint(1, 40)} review",
                "points_awarded": minutes,
                "idempotency_key": None,
                "created_at": started,
            }
        )
        ledger_docs.append(
            {
                "_id": ObjectId(),
                "user_id": user_id,
                "amount": minutes,
                "reason": "study_session",
                "reference": str(session_id),
                "created_at": started,
            }
        )
        points[user_id] += minutes
    user_docs = [
        {
            "_id": user_id,
            "username": f"bench{n:05d}",
            "email": f"bench{n:05d}@example.com",
            "password": "pbkdf2_sha256$1$x$y",
            "time_zone": "Europe/Berlin",
            "points": points[user_id],
            "level": 1,
            "current_streak": 0,
            "longest_streak": 0,
            "total_minutes": points[user_id],
            "session_count": sessions // users,
            "date_joined": now,
        }
        for n, user_id in enumerate(user_ids)
    ]
    for name, docs in (
        ("accounts_user", user_docs),
        ("sessions_app_studysession", session_docs),
        ("gamification_pointsentry", ledger_docs),
    ):
        for start in range(0, len(docs), 5000):
            db[name].insert_many(docs[start : start + 5000], ordered=False)
    db.sessions_app_studysession.create_index([("user_id", 1), ("started_at", -1)])
    db.gamification_pointsentry.create_index([("user_id", 1), ("created_at", -1)])
    db.accounts_user.create_index("username", unique=True)
    return {
        "accounts_user": users,
        "sessions_app_studysession": sessions,
        "gamification_pointsentry": sessions,
    }
