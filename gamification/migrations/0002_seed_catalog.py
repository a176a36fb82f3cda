"""Seed the badge and quest catalog (frozen copy of gamification/catalog.py at this point)."""

from django.db import migrations

BADGES = [
    ("first_session", "First steps", "Log your first study session.", "session_count", 1, 10),
    ("hours_1", "One hour", "Study 1 hour in total.", "total_minutes", 60, 20),
    ("hours_10", "Ten hours", "Study 10 hours in total.", "total_minutes", 600, 30),
    ("hours_100", "A hundred hours", "Study 100 hours in total.", "total_minutes", 6000, 40),
    ("streak_3", "Three in a row", "Study on 3 days in a row.", "longest_streak", 3, 50),
    ("streak_7", "A full week", "Study on 7 days in a row.", "longest_streak", 7, 60),
    ("streak_30", "A month strong", "Study on 30 days in a row.", "longest_streak", 30, 70),
    ("variety_5", "Polymath", "Study 5 different subjects.", "distinct_subjects", 5, 80),
]
QUESTS = [
    ("daily_30_minutes", "Study 30 minutes today", "daily", "minutes", 30, 20, 10),
    ("daily_2_sessions", "Log 2 study sessions today", "daily", "sessions", 2, 10, 20),
    ("weekly_5_days", "Study on 5 days this week", "weekly", "study_days", 5, 100, 30),
    ("weekly_300_minutes", "Study 5 hours this week", "weekly", "minutes", 300, 50, 40),
]


def seed(apps, schema_editor):
    Badge = apps.get_model("gamification", "Badge")
    Quest = apps.get_model("gamification", "Quest")
    for code, name, description, metric, threshold, sort_order in BADGES:
        Badge.objects.get_or_create(
            code=code,
            defaults={"name": name, "description": description, "metric": metric,
                      "threshold": threshold, "sort_order": sort_order},
        )
    for code, title, period, metric, target, reward, sort_order in QUESTS:
        Quest.objects.get_or_create(
            code=code,
            defaults={"title": title, "period": period, "metric": metric, "target": target,
                      "reward_points": reward, "sort_order": sort_order},
        )


def unseed(apps, schema_editor):
    apps.get_model("gamification", "Badge").objects.filter(code__in=[b[0] for b in BADGES]).delete()
    apps.get_model("gamification", "Quest").objects.filter(code__in=[q[0] for q in QUESTS]).delete()


class Migration(migrations.Migration):
    dependencies = [("gamification", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
