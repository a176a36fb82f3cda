from django.apps import AppConfig


class MigrationToolsConfig(AppConfig):
    name = "migration_tools"
