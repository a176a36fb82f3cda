"""``make demo``: the project's main job, end to end, on the embedded database.

Every run starts from fresh demo data in ``.demo/``: it starts a durable embedded
"local" server, applies migrations, loads the demo data, and serves the API on
127.0.0.1:$DEMO_PORT (8000). ``DEMO_SERVE=0`` stops after the data work and exits 0.
Ctrl-C stops every process the demo started.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from studymaster.embedded import EmbeddedMongo

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = Path(os.environ.get("DEMO_DIR", ROOT / ".demo"))


def _step(title: str) -> float:
    print(f"\n==> {title}", flush=True)
    return time.monotonic()


def _manage(*args: str, env: dict) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def main() -> int:
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
    try:
        _step("Applying migrations")
        _manage("migrate", "--no-input", "-v", "0", env=env)
        _step("Loading demo data")
        _manage("seed_demo", env=env)
        print(f"\nDemo data work done in {time.monotonic() - started:.1f}s.")
        if not serve:
            return 0
        _step(f"Serving on http://127.0.0.1:{port}/ (Ctrl-C stops)")
        _manage("runserver", "--noreload", f"127.0.0.1:{port}", env=env)
        return 0
    except KeyboardInterrupt:
        print("\nStopped.")
        return 0
    except subprocess.CalledProcessError as exc:
        print(f"\nThe demo failed at: {' '.join(exc.cmd[2:])} (exit {exc.returncode})", file=sys.stderr)
        return exc.returncode or 1
    finally:
        local.close()


if __name__ == "__main__":
    sys.exit(main())
