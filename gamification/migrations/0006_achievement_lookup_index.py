"""Serve the upsert of an achievement by (user, kind, reference) from an index: the unique
constraint becomes (kind, reference, user), the same rule, so that a plain index can take its
key order."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("gamification", "0005_study_totals_week_points"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
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
