from django.apps import AppConfig
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models.signals import post_migrate


def _ensure_catalog(sender, using=DEFAULT_DB_ALIAS, **kwargs):
    # A test flush empties every collection and then sends post_migrate; put the
    # catalog back. Only missing codes are inserted, so an admin's edits survive.
    from gamification.models import Badge, Quest
    from gamification.services import catalog_ensure

    # post_migrate follows every migrate, also one that stopped before gamification's own
    # migrations (``migrate accounts 0005`` on an empty database). Inserting then would create
    # the collections without their indexes, and gamification.0001 would fail to create them.
    tables = set(connections[using].introspection.table_names())
    if {Badge._meta.db_table, Quest._meta.db_table} <= tables:
        catalog_ensure()


class GamificationConfig(AppConfig):
    name = "gamification"

    def ready(self):
        post_migrate.connect(_ensure_catalog, sender=self, dispatch_uid="gamification_catalog_ensure")
