"""Each study session keeps the time zone it was logged in (docs/gamification.md, "Quest rewards
and time zones"). Sessions logged before this migration get their user's current zone: the
zone their local date was most likely computed in."""

from django.conf import settings
from django.db import migrations, models

from studymaster.db import users_field_copy

SESSIONS = "sessions_app_studysession"


def give_sessions_their_users_zone(apps, schema_editor):
    users = apps.get_model(settings.AUTH_USER_MODEL)._meta.db_table
    users_field_copy(
        schema_editor.connection.database, users=users, collection=SESSIONS, field="time_zone", default="UTC"
    )


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("sessions_app", "0002_studysession_minutes_unpaid"),
    ]

    operations = [
        migrations.AddField(
            model_name="studysession",
            name="time_zone",
            field=models.CharField(default="UTC", max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(give_sessions_their_users_zone, migrations.RunPython.noop),
    ]
