"""`make demo` runs end to end and exits 0 with DEMO_SERVE=0, and a second run behaves like the first."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.embedded_only("the demo runs on its own embedded servers")]


def test_demo_runs_twice_from_fresh_data(tmp_path):
    env = dict(os.environ, DEMO_SERVE="0", DEMO_DIR=str(tmp_path / "demo"))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    outputs = []
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "studymaster.demo"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        outputs.append(result.stdout)
    assert "37 users" in outputs[0]
    assert "37 users" in outputs[1]
