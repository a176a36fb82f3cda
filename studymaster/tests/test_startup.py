"""Start-up cuts: the GDAL probe and the migration commands' admin, and that they change nothing else."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib import admin
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from studymaster import apps, geodjango

ROOT = Path(__file__).resolve().parents[2]

# What the backend made of GeoDjango, and what the admin holds, in a fresh process.
PROBE = """
import json, sys
sys.argv = {argv!r}
import studymaster.geodjango as g
if not {probe}:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, g.GdalProbe)]
import django
django.setup()
from django.contrib import admin
from django_mongodb_backend.features import DatabaseFeatures
from django_mongodb_backend.operations import DatabaseOperations
print(json.dumps({{
    "features": [c.__module__ + "." + c.__qualname__ for c in DatabaseFeatures.__mro__],
    "operations": [c.__module__ + "." + c.__qualname__ for c in DatabaseOperations.__mro__],
    "admin": sorted(m._meta.label for m in admin.site._registry),
}}))
"""


def _fresh_process(*, probe: bool, argv: list[str]) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "studymaster.settings.dev", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(probe=probe, argv=argv)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_the_probe_changes_nothing_the_backend_makes_of_geodjango():
    with_probe = _fresh_process(probe=True, argv=["pytest"])
    without = _fresh_process(probe=False, argv=["pytest"])
    assert with_probe == without
    assert with_probe["admin"]  # no manage.py migration command here: the admin is autodiscovered


def test_a_migration_command_line_skips_the_admins_autodiscovery_only():
    assert _fresh_process(probe=True, argv=["manage.py", "export_local"])["admin"] == []
    assert _fresh_process(probe=True, argv=["manage.py", "check"])["admin"] != []
    assert admin.site._registry  # this test process (call_command's kind) has the whole admin


def test_command_line_subcommand(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/srv/app/manage.py", "import_atlas", "--dry-run"])
    assert apps.command_line_subcommand() == "import_atlas" in apps.ADMINLESS_COMMANDS
    monkeypatch.setattr(sys, "argv", ["gunicorn", "studymaster.wsgi"])
    assert apps.command_line_subcommand() is None


@pytest.mark.skipif(not geodjango.gdal_certainly_absent(), reason="GDAL is installed on this machine")
def test_the_probe_answers_as_libgdal_would_where_gdal_is_absent():
    probe = geodjango.GdalProbe()
    assert probe.find_spec("django.contrib.gis.gdal.base") is None
    with pytest.raises(
        ImproperlyConfigured, match=r'Could not find the GDAL library \(tried "gdal", "GDAL", '
    ):
        probe.find_spec(geodjango.GDAL_MODULE)


def test_the_probe_stands_aside_where_gdal_may_be(tmp_path, monkeypatch):
    (tmp_path / "libgdal.so.34").write_bytes(b"")
    for variable in ("LD_LIBRARY_PATH", "LIBRARY_PATH"):
        monkeypatch.setenv(variable, str(tmp_path))
        assert not geodjango.gdal_certainly_absent()
        monkeypatch.delenv(variable)
        assert str(tmp_path) not in geodjango.library_folders()
    with override_settings(GDAL_LIBRARY_PATH="/opt/gdal/libgdal.so"):
        assert geodjango.GdalProbe().find_spec(geodjango.GDAL_MODULE) is None
    monkeypatch.setattr(sys, "platform", "darwin")
    assert not geodjango.gdal_certainly_absent()


def test_the_probe_is_installed_once():
    geodjango.install()
    geodjango.install()
    assert sum(isinstance(finder, geodjango.GdalProbe) for finder in sys.meta_path) == 1
