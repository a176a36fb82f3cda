from django.db import models

from studymaster.tools_collections import TOOLS_COLLECTION_PREFIX


class MigrationRun(models.Model):
    """One run of export_local, import_atlas or verify_migration: the audit log operators browse.

    Import and verify write theirs into the target's database, export into the application's
    (migration_tools.runs); the documents are written with PyMongo in this model's shape.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        OK = "ok", "ok"
        REFUSED = "refused", "refused or differences (exit 1)"
        FAILED = "failed", "could not run (exit 2)"
        INTERRUPTED = "interrupted", "interrupted by Ctrl-C (exit 130)"

    command = models.CharField(max_length=40)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    exit_code = models.IntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    # Redacted: never a URI with credentials.
    source = models.CharField(max_length=500, blank=True)
    target = models.CharField(max_length=500, blank=True)
    database = models.CharField(max_length=100, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    checksums = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        db_table = f"{TOOLS_COLLECTION_PREFIX}migrationrun"
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.command} {self.started_at:%Y-%m-%d %H:%M:%S} {self.status}"
