"""`make demo` runs end to end: with DEMO_SERVE=0 it exits 0; a second run starts from fresh data,
serves the API, and Ctrl-C stops every process it started."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from studymaster.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.embedded_only("the demo runs on its own embedded servers")]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_api(port: int, demo: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and demo.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health/ready/", timeout=2) as response:  # noqa: S310
                assert response.status == 200
                return
        except OSError:
            time.sleep(1)
    raise AssertionError("the demo never served the API")


def test_demo_runs_then_serves_from_fresh_data_and_stops_on_ctrl_c(tmp_path):
    env = dict(os.environ, DEMO_SERVE="0", DEMO_DIR=str(tmp_path / "demo"))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    first = subprocess.run(
        [sys.executable, "-m", "studymaster.demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "37 users" in first.stdout and "RESULT: IDENTICAL" in first.stdout

    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "studymaster.demo"],
            cwd=ROOT,
            env={**env, "DEMO_SERVE": "1", "DEMO_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for_api(port, demo)
            demo.send_signal(signal.SIGINT)
            assert demo.wait(60) == 0
        finally:
            if demo.poll() is None:
                demo.kill()
    output = log.read_text()
    assert "37 users" in output and "RESULT: IDENTICAL" in output  # fresh data again, not doubled
    assert "Stopped." in output
    servers = [int(p) for p in re.findall(r"on 127\.0\.0\.1:(\d+)", output)]
    assert len(servers) >= 2
    assert not any(_listening(p) for p in [*servers, port])  # every process it started is gone
