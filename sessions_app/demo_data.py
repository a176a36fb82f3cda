"""Realistic demo data: a few dozen learners in several time zones."""

import random

from accounts.models import User

TIME_ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Sao_Paulo",
]
DEMO_PASSWORD = "demo-password-123"  # noqa: S105 - published in the README for the demo only


def seed_demo(*, users: int = 36, seed: int = 7) -> dict:
    """Create ``users`` learners and one staff user; return counts of what was made."""
    rng = random.Random(seed)
    User.objects.create_superuser("admin", "admin@demo.studymaster.local", DEMO_PASSWORD)
    learners = [
        User(
            username=f"learner{n:02d}",
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
    return {"users": len(learners) + 1}
