"""Fill the maintained totals (gamification.0005: study totals and week points) for the study
sessions and ledger already there, and store each user's streaks as they are now defined (the
latest run, however long ago): the same rebuild as ``manage.py recompute_totals --fix``, for
every user whose totals differ, each in a transaction of its own."""

from django.db import migrations

from gamification.invariants import totals_check
from gamification.services import study_totals_rewrite


def fill_study_totals(apps, schema_editor):
    sessions = apps.get_model("sessions_app", "StudySession")
    totals_check(
        schema_editor.connection.database,
        sessions_model=sessions,
        repair=lambda user_id: study_totals_rewrite(user_id=user_id, sessions_model=sessions),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0005_studysession_request_hash"),
        ("gamification", "0005_study_totals_week_points"),
    ]

    operations = [migrations.RunPython(fill_study_totals, migrations.RunPython.noop)]
