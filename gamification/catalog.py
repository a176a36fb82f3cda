"""The seeded, data-driven catalog: badges and quest templates.

The data migration ``0002_seed_catalog`` copies these rows into the database; the
``post_migrate`` hook in ``apps.py`` re-inserts any that are missing (a test flush
empties every collection), and never overwrites an admin's edits.
"""

from __future__ import annotations

# Badge metrics: what a badge threshold is compared with.
SESSION_COUNT = "session_count"
TOTAL_MINUTES = "total_minutes"
LONGEST_STREAK = "longest_streak"
DISTINCT_SUBJECTS = "distinct_subjects"

# Quest periods and metrics.
DAILY = "daily"
WEEKLY = "weekly"
MINUTES = "minutes"
SESSIONS = "sessions"
STUDY_DAYS = "study_days"

BADGES = [
    {
        "code": "first_session",
        "name": "First steps",
        "description": "Log your first study session.",
        "metric": SESSION_COUNT,
        "threshold": 1,
        "sort_order": 10,
    },
    {
        "code": "hours_1",
        "name": "One hour",
        "description": "Study 1 hour in total.",
        "metric": TOTAL_MINUTES,
        "threshold": 60,
        "sort_order": 20,
    },
    {
        "code": "hours_10",
        "name": "Ten hours",
        "description": "Study 10 hours in total.",
        "metric": TOTAL_MINUTES,
        "threshold": 600,
        "sort_order": 30,
    },
    {
        "code": "hours_100",
        "name": "A hundred hours",
        "description": "Study 100 hours in total.",
        "metric": TOTAL_MINUTES,
        "threshold": 6000,
        "sort_order": 40,
    },
    {
        "code": "streak_3",
        "name": "Three in a row",
        "description": "Study on 3 days in a row.",
        "metric": LONGEST_STREAK,
        "threshold": 3,
        "sort_order": 50,
    },
    {
        "code": "streak_7",
        "name": "A full week",
        "description": "Study on 7 days in a row.",
        "metric": LONGEST_STREAK,
        "threshold": 7,
        "sort_order": 60,
    },
    {
        "code": "streak_30",
        "name": "A month strong",
        "description": "Study on 30 days in a row.",
        "metric": LONGEST_STREAK,
        "threshold": 30,
        "sort_order": 70,
    },
    {
        "code": "variety_5",
        "name": "Polymath",
        "description": "Study 5 different subjects.",
        "metric": DISTINCT_SUBJECTS,
        "threshold": 5,
        "sort_order": 80,
    },
]

QUESTS = [
    {
        "code": "daily_30_minutes",
        "title": "Study 30 minutes today",
        "period": DAILY,
        "metric": MINUTES,
        "target": 30,
        "reward_points": 20,
        "sort_order": 10,
    },
    {
        "code": "daily_2_sessions",
        "title": "Log 2 study sessions today",
        "period": DAILY,
        "metric": SESSIONS,
        "target": 2,
        "reward_points": 10,
        "sort_order": 20,
    },
    {
        "code": "weekly_5_days",
        "title": "Study on 5 days this week",
        "period": WEEKLY,
        "metric": STUDY_DAYS,
        "target": 5,
        "reward_points": 100,
        "sort_order": 30,
    },
    {
        "code": "weekly_300_minutes",
        "title": "Study 5 hours this week",
        "period": WEEKLY,
        "metric": MINUTES,
        "target": 300,
        "reward_points": 50,
        "sort_order": 40,
    },
]
