"""Usernames compared by a normalised key and a confusables skeleton, both unique (accounts.usernames).

Existing accounts get theirs computed here. When two accounts would share a key or a skeleton
(``Ada`` and ``ada``, or ``learner09`` and ``lеarner09`` with a Cyrillic е), the migration
stops before writing anything, names them, and renames nobody: which one keeps the name is a
person's decision (docs/troubleshooting.md, "migrate stops: usernames that collide").
"""

from collections import defaultdict

from django.core.management.base import CommandError
from django.db import migrations, models
from pymongo import UpdateOne

import accounts.models
from accounts.usernames import username_fields

USERS = "accounts_user"


def username_collisions(users) -> list[str]:
    """One line per group of ``users`` (``{"_id", "username"}`` documents) that would share a key
    (the same name) or, with different keys, a skeleton (names that look the same); empty when
    there is none."""
    groups = defaultdict(list)
    for user in users:
        for field, value in username_fields(user["username"]).items():
            groups[(field, value)].append(user)
    lines = []
    for (field, _), members in sorted(groups.items(), key=lambda item: item[0]):
        keys = {username_fields(member["username"])["username_key"] for member in members}
        if len(members) < 2 or (field == "username_skeleton" and len(keys) < 2):
            continue  # alone, or looking alike only because it is the same name, told above
        names = ", ".join(f"{member['username']!r} (id {member['_id']})" for member in members)
        lines.append(f"{names}: {'the same name' if field == 'username_key' else 'names that look the same'}")
    return lines


def check_usernames(apps, schema_editor):
    users = list(schema_editor.connection.database[USERS].find({}, {"username": 1}))
    collisions = username_collisions(users)
    if collisions:
        raise CommandError(
            "accounts.0006 stopped before changing anything: these accounts' usernames collide "
            "once compared without regard to case, Unicode width forms or look-alike characters:\n  "
            + "\n  ".join(collisions)
            + "\nRename all but one of each group (admin, or manage.py shell), then run migrate again. "
            "See docs/troubleshooting.md."
        )


def fill_username_fields(apps, schema_editor):
    collection = schema_editor.connection.database[USERS]
    updates = [
        UpdateOne({"_id": user["_id"]}, {"$set": username_fields(user["username"])})
        for user in collection.find({}, {"username": 1})
    ]
    if updates:
        collection.bulk_write(updates, ordered=False)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_user_last_study_date_leaderboard_index"),
    ]

    operations = [
        # First, so that a collision stops the migration before any document changes.
        migrations.RunPython(check_usernames, migrations.RunPython.noop),
        migrations.AddField(
            model_name="user",
            name="username_key",
            field=models.TextField(default="", editable=False),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="user",
            name="username_skeleton",
            field=models.TextField(default="", editable=False),
            preserve_default=False,
        ),
        migrations.RunPython(fill_username_fields, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="user",
            name="username_key",
            field=models.TextField(editable=False, unique=True),
        ),
        migrations.AlterField(
            model_name="user",
            name="username_skeleton",
            field=models.TextField(editable=False, unique=True),
        ),
        migrations.AlterModelManagers(
            name="user",
            managers=[("objects", accounts.models.UserManager())],
        ),
    ]
