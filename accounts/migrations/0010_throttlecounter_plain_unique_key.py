"""The throttle counters' unique index on ``key``, as a plain index.

The backend creates every unique field's index as a partial one (``{key: {$type: "string"}}``),
and the embedded server's planner does not use it for the counter's ``{key: ...}`` upsert: every
throttled request scanned the collection, whose size grows with the clients active in a window.
Every key is a string, so the plain index holds the same entries and keeps the same name (the
model's ``unique=True`` still describes it to Django)."""

from django.db import migrations

COLLECTION = "accounts_throttlecounter"


def _key_index(collection) -> tuple[str, dict]:
    return next(
        (name, info) for name, info in collection.index_information().items() if info["key"] == [("key", 1)]
    )


def plain(apps, schema_editor):
    collection = schema_editor.connection.database[COLLECTION]
    name, info = _key_index(collection)
    if "partialFilterExpression" in info:
        collection.drop_index(name)
        collection.create_index("key", unique=True, name=name)


def partial(apps, schema_editor):
    collection = schema_editor.connection.database[COLLECTION]
    name, info = _key_index(collection)
    if "partialFilterExpression" not in info:
        collection.drop_index(name)
        collection.create_index("key", unique=True, name=name, partialFilterExpression={"key": {"$type": "string"}})


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0009_user_progress_version"),
    ]

    operations = [migrations.RunPython(plain, partial)]
