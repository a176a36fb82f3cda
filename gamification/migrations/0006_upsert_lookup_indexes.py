"""Serve the upserts of every change (an achievement by (user, kind, reference), a quest period
by (user, quest, period_start), a badge by (user, badge)) from indexes of exactly those fields:
each unique constraint keeps its rule in another key order, so that a plain index can take the
query's."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("gamification", "0005_study_totals_week_points"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="questprogress", name="questprogress_unique"),
        migrations.AddConstraint(
            model_name="questprogress",
            constraint=models.UniqueConstraint(
                fields=("quest", "period_start", "user"), name="questprogress_unique"
            ),
        ),
        migrations.AddIndex(
            model_name="questprogress",
            index=models.Index(fields=["user", "quest", "period_start"], name="questprogress_user_quest"),
        ),
        migrations.RemoveConstraint(model_name="userbadge", name="userbadge_unique"),
        migrations.AddConstraint(
            model_name="userbadge",
            constraint=models.UniqueConstraint(fields=("badge", "user"), name="userbadge_unique"),
        ),
        migrations.AddIndex(
            model_name="userbadge",
            index=models.Index(fields=["user", "badge"], name="userbadge_user_badge"),
        ),
        migrations.RemoveConstraint(model_name="achievement", name="achievement_unique"),
        migrations.AddConstraint(
            model_name="achievement",
            constraint=models.UniqueConstraint(fields=("kind", "reference", "user"), name="achievement_unique"),
        ),
        migrations.AddIndex(
            model_name="achievement",
            index=models.Index(fields=["user", "kind", "reference"], name="achievement_user_kind_ref"),
        ),
    ]
