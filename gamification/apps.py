from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_catalog(sender, **kwargs):
    # A test flush empties every collection and then sends post_migrate; put the
    # catalog back. Only missing codes are inserted, so an admin's edits survive.
    from gamification.services import catalog_ensure

    catalog_ensure()


class GamificationConfig(AppConfig):
    name = "gamification"

    def ready(self):
        post_migrate.connect(_ensure_catalog, sender=self, dispatch_uid="gamification_catalog_ensure")
