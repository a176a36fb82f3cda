"""Give each week's points what the weekly board shows and filters on, copied from its user (the
username, and whether the user is listed: active and not opted out), and rank the board from one
index on (week, listed, -points, username): the board then reads one collection, where it read
the week's points and then every one of their users."""

from django.conf import settings
from django.db import migrations, models
from pymongo import UpdateMany

from gamification.totals import LISTING_FIELDS, listing


def copy_listing(apps, schema_editor):
    db = schema_editor.connection.database
    weeks = apps.get_model("gamification", "WeekPoints")._meta.db_table
    users = apps.get_model(*settings.AUTH_USER_MODEL.split("."))._meta.db_table
    owners = set(db[weeks].distinct("user_id"))
    # Every user read once, not an $in of all owners (which the embedded server matches in N²).
    writes = [
        UpdateMany({"user_id": user["_id"]}, {"$set": listing(user)})
        for user in db[users].find({}, dict.fromkeys(LISTING_FIELDS, 1))
        if user["_id"] in owners
    ]
    if writes:
        db[weeks].bulk_write(writes, ordered=False)


class Migration(migrations.Migration):
    dependencies = [
        ("gamification", "0006_upsert_lookup_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="weekpoints", name="username", field=models.CharField(default="", max_length=150)
        ),
        migrations.AddField(model_name="weekpoints", name="listed", field=models.BooleanField(default=True)),
        migrations.RunPython(copy_listing, migrations.RunPython.noop),
        migrations.RemoveIndex(model_name="weekpoints", name="weekpoints_ranking"),
        migrations.AddIndex(
            model_name="weekpoints",
            index=models.Index(fields=["week_start", "listed", "-points", "username"], name="weekpoints_board"),
        ),
    ]
