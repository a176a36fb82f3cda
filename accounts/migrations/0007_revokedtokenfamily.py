"""Revoked refresh-token families (accounts.models.RevokedTokenFamily), deleted by a TTL index
once the last token a family could hold has expired."""

import django_mongodb_backend.fields
from django.db import migrations, models

COLLECTION = "accounts_revokedtokenfamily"
INDEX_NAME = "expires_at_ttl"


def create_ttl_index(apps, schema_editor):
    schema_editor.connection.database[COLLECTION].create_index(
        "expires_at", name=INDEX_NAME, expireAfterSeconds=0
    )


def drop_ttl_index(apps, schema_editor):
    schema_editor.connection.database[COLLECTION].drop_index(INDEX_NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_user_username_key_skeleton"),
    ]

    operations = [
        migrations.CreateModel(
            name="RevokedTokenFamily",
            fields=[
                (
                    "id",
                    django_mongodb_backend.fields.ObjectIdAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("family", models.CharField(max_length=64, unique=True)),
                ("expires_at", models.DateTimeField()),
            ],
            options={"db_table": "accounts_revokedtokenfamily"},
        ),
        migrations.RunPython(create_ttl_index, drop_ttl_index),
    ]
