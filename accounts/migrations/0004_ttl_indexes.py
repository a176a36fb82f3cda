"""TTL indexes: MongoDB deletes revoked tokens and throttle counters once they expire.

Django's Index has no expireAfterSeconds, so these are created with PyMongo.
"""

from django.db import migrations

TTL_COLLECTIONS = ["accounts_revokedtoken", "accounts_throttlecounter"]
INDEX_NAME = "expires_at_ttl"


def create_ttl_indexes(apps, schema_editor):
    database = schema_editor.connection.database
    for name in TTL_COLLECTIONS:
        database[name].create_index("expires_at", name=INDEX_NAME, expireAfterSeconds=0)


def drop_ttl_indexes(apps, schema_editor):
    database = schema_editor.connection.database
    for name in TTL_COLLECTIONS:
        database[name].drop_index(INDEX_NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_revokedtoken_throttlecounter_email_unique"),
    ]

    operations = [migrations.RunPython(create_ttl_indexes, drop_ttl_indexes)]
