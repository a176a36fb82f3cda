"""Points entries record when the study they are for happened (``studied_at``): the weekly
leaderboard counts by it, and its index replaces the one on ``created_at``. Until
sessions_app.0004 finds the study sessions' starts, existing entries count from when they were
written, which is all an adjustment or the entry of a deleted session can know."""

from django.db import migrations, models

LEDGER = "gamification_pointsentry"


def studied_when_written(apps, schema_editor):
    schema_editor.connection.database[LEDGER].update_many({}, [{"$set": {"studied_at": "$created_at"}}])


class Migration(migrations.Migration):
    dependencies = [("gamification", "0003_questprogress_time_zone")]

    operations = [
        migrations.AddField(
            model_name="pointsentry",
            name="studied_at",
            field=models.DateTimeField(default=None, null=True),
            preserve_default=False,
        ),
        migrations.RunPython(studied_when_written, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="pointsentry",
            name="studied_at",
            field=models.DateTimeField(),
        ),
        migrations.RemoveIndex(model_name="pointsentry", name="points_created"),
        migrations.AddIndex(
            model_name="pointsentry",
            index=models.Index(fields=["studied_at"], name="points_studied"),
        ),
    ]
