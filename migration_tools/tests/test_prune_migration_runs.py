import datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from migration_tools.models import MigrationRun

pytestmark = pytest.mark.django_db


def _run(days_ago: int, status=MigrationRun.Status.OK) -> MigrationRun:
    return MigrationRun.objects.create(
        command="export_local", status=status, started_at=timezone.now() - datetime.timedelta(days=days_ago)
    )


def test_prune_deletes_only_old_finished_runs(capsys):
    old, recent, stuck = _run(400), _run(10), _run(400, MigrationRun.Status.RUNNING)
    call_command("prune_migration_runs", "--days", "180", "--dry-run")
    assert "1 audit records older than 180 days would be deleted" in capsys.readouterr().out
    assert MigrationRun.objects.count() == 3
    call_command("prune_migration_runs", "--days", "180")
    assert set(MigrationRun.objects.values_list("pk", flat=True)) == {recent.pk, stuck.pk}
    assert not MigrationRun.objects.filter(pk=old.pk).exists()


def test_prune_refuses_a_non_positive_age():
    with pytest.raises(CommandError) as caught:
        call_command("prune_migration_runs", "--days", "0")
    assert caught.value.returncode == 1
