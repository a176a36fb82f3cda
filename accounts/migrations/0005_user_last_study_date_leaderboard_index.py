"""The last study date, which makes the current streak correct as of any day without a write,
and the index of the all-time leaderboard.

Existing users get the latest local date of their study sessions, so streaks stored before
this migration keep showing until a whole local day passes without a session.
"""

from django.db import migrations, models
from pymongo import UpdateOne


def backfill_last_study_date(apps, schema_editor):
    database = schema_editor.connection.database
    latest = database["sessions_app_studysession"].aggregate(
        [{"$group": {"_id": "$user_id", "last_study_date": {"$max": "$local_date"}}}]
    )
    updates = [
        UpdateOne({"_id": row["_id"]}, {"$set": {"last_study_date": row["last_study_date"]}})
        for row in latest
    ]
    if updates:
        database["accounts_user"].bulk_write(updates, ordered=False)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0004_ttl_indexes'),
        ('auth', '0001_initial'),
        ('sessions_app', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='user',
            name='last_study_date',
            field=models.DateField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name='user',
            index=models.Index(fields=['leaderboard_opt_out', 'is_active', '-points', 'username'], name='accounts_user_leaderboard'),
        ),
        migrations.RunPython(backfill_last_study_date, migrations.RunPython.noop),
    ]
