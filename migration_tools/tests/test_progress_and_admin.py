"""Progress shows on a terminal only; the audit log is read-only in the admin."""

import io

from django.contrib import admin
from django.core.management.base import OutputWrapper

from migration_tools.models import MigrationRun
from migration_tools.progress import Progress, human_bytes


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_on_a_terminal_counts_documents_and_bytes():
    stream = Terminal()
    progress = Progress.for_command(OutputWrapper(stream), verbosity=1)
    progress.update("items", 1500, 3 * 1024 * 1024, total_documents=3000)
    progress.done()
    assert "items: 1500/3000 documents, 3.0 MB" in stream.getvalue()


def test_progress_is_quiet_in_logs_and_at_verbosity_zero():
    for stream, verbosity in ((io.StringIO(), 1), (Terminal(), 0)):
        progress = Progress.for_command(OutputWrapper(stream), verbosity=verbosity)
        progress.update("items", 10, 10)
        progress.done()
        assert stream.getvalue() == ""


def test_human_bytes():
    assert [human_bytes(n) for n in (12, 2048, 5 << 30)] == ["12 B", "2.0 KB", "5.0 GB"]


def test_migration_runs_are_read_only_in_the_admin(rf):
    model_admin = admin.site._registry[MigrationRun]
    request = rf.get("/admin/")
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
