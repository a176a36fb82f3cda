"""Quest progress remembers the time zone its reward was earned in: whether the period is still
open, and so whether a deletion may take the reward back, is decided in it (docs/gamification.md).
Periods recorded before this migration get their user's current zone."""

from django.conf import settings
from django.db import migrations, models

from studymaster.db import users_field_copy

QUEST_PROGRESS = "gamification_questprogress"


def give_progress_its_users_zone(apps, schema_editor):
    users = apps.get_model(settings.AUTH_USER_MODEL)._meta.db_table
    users_field_copy(
        schema_editor.connection.database, users=users, collection=QUEST_PROGRESS, field="time_zone", default="UTC"
    )


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("gamification", "0002_seed_catalog"),
    ]

    operations = [
        migrations.AddField(
            model_name="questprogress",
            name="time_zone",
            field=models.CharField(default="UTC", max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(give_progress_its_users_zone, migrations.RunPython.noop),
    ]
