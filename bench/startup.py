"""What Django's start-up costs a migration command, and what each cut saves (or would save).

``python -m bench.startup`` runs ``manage.py export_local --help`` as whole processes, best of
``--repeat``, in these variants:

- ``before``: django_mongodb_backend imports GeoDjango, whose ``libgdal`` module looks for the
  GDAL library with ``ctypes.util.find_library`` under 12 names (each miss runs ``ldconfig``,
  ``gcc`` and ``ld``), fails with ImproperlyConfigured, which the backend catches, and is
  imported again, three times in all; and the admin imports every app's ``admin.py``.
- ``+ the GDAL probe``: studymaster/geodjango.py answers that import at once where GDAL is
  certainly absent. Applied: the package installs it.
- ``+ no admin autodiscovery (as it is)``: the migration commands, run from the command line,
  skip it (studymaster/apps.py). Applied.
- ``+ only the apps the command needs``: the backend, auth and the apps whose models it
  reads. Not applied: one settings module serves every process.

"before" and the cut not applied are measured by undoing the cuts in a launcher, and through a
settings module written to a temporary folder.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = """
import sys
sys.path.insert(0, {root!r})
import studymaster.apps
from studymaster.geodjango import GdalProbe
if not {probe}:
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, GdalProbe)]
if not {adminless}:
    studymaster.apps.ADMINLESS_COMMANDS = frozenset()
sys.argv = ["manage.py", "export_local", "--help"]
import runpy
runpy.run_path("manage.py", run_name="__main__")
"""

SETTINGS = """
from studymaster.settings.dev import *  # noqa: F403
if {few_apps}:
    INSTALLED_APPS = ["studymaster.apps.MongoAuthConfig", "studymaster.apps.MongoContentTypesConfig",
                      "django_mongodb_backend", "accounts", "sessions_app", "gamification", "migration_tools"]
    MIDDLEWARE = []
    ROOT_URLCONF = None
"""

VARIANTS = [
    ("before", {"probe": False, "adminless": False}),
    ("+ the GDAL probe", {"adminless": False}),
    ("+ no admin autodiscovery (as it is)", {}),
    ("+ only the apps the command needs", {"few_apps": True}),
]


def wall_time(options: dict, folder: Path, repeat: int) -> float:
    """Best whole-process seconds of ``manage.py export_local --help`` with ``options`` applied."""
    (folder / "startup_settings.py").write_text(SETTINGS.format(few_apps=options.get("few_apps", False)))
    launcher = LAUNCHER.format(
        root=str(ROOT), probe=options.get("probe", True), adminless=options.get("adminless", True)
    )
    env = {
        "PYTHONPATH": f"{folder}:{ROOT}",
        "DJANGO_SETTINGS_MODULE": "startup_settings",
        "PATH": "/usr/bin:/bin",
    }
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", launcher], cwd=ROOT, env=env, capture_output=True, text=True
        )
        best = min(best, time.perf_counter() - started)
        if result.returncode != 0 or "--out" not in result.stdout:
            raise RuntimeError(f"the command failed:\n{result.stderr[-2000:]}")
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=5, help="Runs per variant; the best counts (default 5)."
    )
    args = parser.parse_args(argv)
    bare = min(
        _timed([sys.executable, "-c", "import pymongo, bson.raw_bson"]) for _ in range(max(args.repeat, 1))
    )
    floor = 'python -c "import pymongo" (the floor)'
    print(f"{floor:<40} {bare:6.3f} s")
    with tempfile.TemporaryDirectory() as folder:
        for label, options in VARIANTS:
            print(f"{label:<40} {wall_time(options, Path(folder), args.repeat):6.3f} s", flush=True)
    return 0


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
