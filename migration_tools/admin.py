from django.contrib import admin

from migration_tools.models import MigrationRun
from studymaster.admin import ReadOnlyAdminMixin


@admin.register(MigrationRun)
class MigrationRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: the audit log is written by the commands alone."""

    list_display = (
        "command",
        "status",
        "exit_code",
        "started_at",
        "finished_at",
        "source",
        "target",
        "database",
    )
    list_filter = ("command", "status")
    search_fields = ("command", "database", "message")
    readonly_fields = [field.name for field in MigrationRun._meta.fields]
