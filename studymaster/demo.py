"""``make demo``: the project's main job, end to end, on the embedded database.

Every run starts from fresh demo data in ``.demo/``: it starts a durable embedded
"local" server, applies migrations, loads the demo data, then migrates it as an
operator would (docs/migration.md): export_local, an "Atlas stand-in" (durable, TLS,
SCRAM, an app user with readWrite on the application's database only), import_atlas,
verify_migration. It then serves the API on the Atlas stand-in, on
127.0.0.1:$DEMO_PORT (8000). ``DEMO_SERVE=0`` stops after the data work and exits 0.
Ctrl-C stops every process the demo started.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from studymaster.embedded import EmbeddedMongo, MongoUser, make_tls_files

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = Path(os.environ.get("DEMO_DIR", ROOT / ".demo"))


def _step(title: str) -> float:
    print(f"\n==> {title}", flush=True)
    return time.monotonic()


def _manage(*args: str, env: dict) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def _stop(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    # Ctrl-C, and a SIGTERM from a supervisor, stop the demo through its clean-up below, even
    # when it was started from a shell that ignores SIGINT for background jobs.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    started = time.monotonic()
    serve = os.environ.get("DEMO_SERVE", "1") != "0"
    port = int(os.environ.get("DEMO_PORT", "8000"))
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)

    _step("Starting the embedded local MongoDB (SecantusDB, durable)")
    local = EmbeddedMongo(DEMO_DIR / "local", durable=True, log_path=DEMO_DIR / "local.log")
    local.start()
    print(f"    local server on 127.0.0.1:{local.port}")
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="studymaster.settings.dev",
        MONGODB_URI=local.uri(),
        LOCAL_MONGODB_URI=local.uri(),
    )
    atlas = None
    try:
        _step("Applying migrations")
        _manage("migrate", "--no-input", "-v", "0", env=env)
        _step("Loading demo data")
        _manage("seed_demo", env=env)
        _step("Exporting the local database (export_local)")
        _manage("export_local", "--out", str(DEMO_DIR / "dump"), env=env)
        _step("Starting the Atlas stand-in (SecantusDB, durable, TLS, SCRAM, readWrite-only app user)")
        atlas = _start_atlas_stand_in(env.get("MONGODB_DB_NAME", "studymaster"))
        env["ATLAS_MONGODB_URI"] = atlas.uri(atlas.users[0])
        print(f"    Atlas stand-in on 127.0.0.1:{atlas.port} (TLS)")
        _step("Importing into the Atlas stand-in (import_atlas)")
        _manage("import_atlas", "--from", str(DEMO_DIR / "dump"), env=env)
        _step("Verifying the copy (verify_migration)")
        _manage("verify_migration", env=env)
        print(f"\nDemo data work done in {time.monotonic() - started:.1f}s.")
        if not serve:
            return 0
        _step(f"Serving on http://127.0.0.1:{port}/ from the Atlas stand-in (Ctrl-C stops)")
        _manage(
            "runserver",
            "--noreload",
            f"127.0.0.1:{port}",
            env=dict(env, MONGODB_URI=env["ATLAS_MONGODB_URI"]),
        )
        return 0
    except KeyboardInterrupt:
        print("\nStopped.")
        return 0
    except subprocess.CalledProcessError as exc:
        print(f"\nThe demo failed at: {' '.join(exc.cmd[2:])} (exit {exc.returncode})", file=sys.stderr)
        return exc.returncode or 1
    finally:
        if atlas is not None:
            atlas.close()
        local.close()


def _start_atlas_stand_in(db_name: str) -> EmbeddedMongo:
    """Like an Atlas cluster: TLS, SCRAM, and an app user with readWrite on one database only."""
    app_user = MongoUser("studymaster-app", secrets.token_urlsafe(18), [{"role": "readWrite", "db": db_name}])
    atlas = EmbeddedMongo(
        DEMO_DIR / "atlas",
        durable=True,
        users=[app_user],
        tls=make_tls_files(DEMO_DIR / "atlas-tls"),
        log_path=DEMO_DIR / "atlas.log",
    )
    atlas.start()
    return atlas


if __name__ == "__main__":
    sys.exit(main())
