"""Django's contrib apps with ObjectId primary keys (their migrations live in mongo_migrations/)."""

import os
import sys

from django.contrib.admin.apps import AdminConfig, SimpleAdminConfig
from django.contrib.auth.apps import AuthConfig
from django.contrib.contenttypes.apps import ContentTypesConfig

OBJECT_ID_FIELD = "django_mongodb_backend.fields.ObjectIdAutoField"
# The migration commands never show an admin page and run no system checks: run from the command
# line, they skip the admin's autodiscovery (importing every app's admin.py, ~0.1 s: accounts'
# pulls in simplejwt). Anywhere else (the web, the tests, call_command, manage.py check) the admin
# is as always.
ADMINLESS_COMMANDS = frozenset({"export_local", "import_atlas", "verify_migration", "prune_migration_runs"})


def command_line_subcommand() -> str | None:
    """The subcommand of ``manage.py <subcommand> ...`` in this process, else None."""
    if len(sys.argv) > 1 and os.path.basename(sys.argv[0]) == "manage.py":
        return sys.argv[1]
    return None


class MongoAdminConfig(AdminConfig):
    default_auto_field = OBJECT_ID_FIELD

    def ready(self):
        if command_line_subcommand() in ADMINLESS_COMMANDS:
            SimpleAdminConfig.ready(self)  # the admin's checks are registered; no autodiscovery
        else:
            super().ready()


class MongoAuthConfig(AuthConfig):
    default_auto_field = OBJECT_ID_FIELD


class MongoContentTypesConfig(ContentTypesConfig):
    default_auto_field = OBJECT_ID_FIELD
