"""The study session list's index holds its whole order (user, newest start, then id), so a page is
read in order from the index instead of sorting every session of the user."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0006_fill_study_totals"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="studysession",
            index=models.Index(fields=["user", "-started_at", "-id"], name="session_user_started_id"),
        ),
        migrations.RemoveIndex(model_name="studysession", name="session_user_started"),
    ]
