"""Smoke runs of `make bench` and `make load`: seconds, not minutes. They measure and report;
they assert that the harness ran and reported every figure, never a timing."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.bench,
    pytest.mark.slow,
    pytest.mark.embedded_only("benchmarks run on their own embedded servers"),
]


def _run(module: str) -> dict:
    before = set((ROOT / "bench" / "results").glob("*.json"))
    result = subprocess.run(
        [sys.executable, "-m", module, "--smoke"],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    written = sorted(set((ROOT / "bench" / "results").glob("*.json")) - before)
    assert len(written) == 1, result.stdout
    report = json.loads(written[0].read_text())
    written[0].unlink()
    return report


def test_migration_bench_smoke_reports_ratios_and_rss():
    report = _run("bench.migration")
    assert report["smoke"] is True
    for result in report["sizes"].values():
        for kind in ("export", "import", "verify"):
            row = result[kind]
            assert row["floor"]["seconds"] > 0 and row["command"]["seconds"] > 0
            assert row["ratio"] == pytest.approx(
                row["floor"]["seconds"] / row["command"]["seconds"], abs=0.01
            )
            assert row["command"]["peak_rss_mb"] > 10
        restore = result["restore"]
        assert restore["first_import"]["seconds"] > 0 and restore["restore"]["seconds"] > 0
        assert restore["ratio"] == pytest.approx(
            restore["first_import"]["seconds"] / restore["restore"]["seconds"], abs=0.01
        )
    assert set(report["rss_growth"]) == {"export", "import", "verify"}


def test_load_smoke_reports_every_endpoint_without_errors():
    report = _run("bench.load")
    (step,) = report["steps"]
    assert step["errors"] == 0, step["endpoints"]
    names = set(step["endpoints"])
    for endpoint in (
        "POST /api/sessions/",
        "GET /api/me/",
        "GET /api/leaderboard/?period=week",
        "GET /api/health/live/",
    ):
        assert endpoint in names
    assert step["mongodb_ops_per_second"] > 0
    assert report["storage"]["bytes_per_1000_sessions"] > 0


def test_peers_bench_smoke_compares_ours_the_floor_and_the_real_tools(mongo_tools):
    report = _run("bench.peers")
    assert report["smoke"] is True and report["documents"] > 1000
    assert list(report["distances"]) == ["loopback", "2 ms"]
    for label, rows in report["distances"].items():
        for kind in ("export", "import"):
            programs = rows[kind]["archive"]
            assert programs["ours"]["seconds"] > 0 and programs["peer"]["seconds"] > 0
            assert report["ratios"][label][kind]["archive"]["peer_over_ours"] == pytest.approx(
                programs["peer"]["seconds"] / programs["ours"]["seconds"], abs=0.01
            )
        assert (
            rows["verify"]["live"]["ours"]["peak_rss_mb"] > 10
            and rows["verify"]["floor"]["floor"]["seconds"] > 0
        )


def test_startup_bench_reports_every_variant():
    result = subprocess.run(
        [sys.executable, "-m", "bench.startup", "--repeat", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    labels = [line.rsplit(None, 2)[0] for line in result.stdout.splitlines()]
    assert labels == [
        'python -c "import pymongo" (the floor)',
        "before",
        "+ the GDAL probe",
        "+ no admin autodiscovery (as it is)",
        "+ only the apps the command needs",
    ]


def test_history_bench_smoke_reports_every_endpoint_at_every_size():
    report = _run("bench.history")
    assert list(report["sizes"]) == ["3", "30"]
    for size in report["sizes"].values():
        assert set(size) == {
            "POST /api/sessions/",
            "DELETE /api/sessions/{id}/",
            "GET /api/stats/ (366 days)",
            "GET /api/me/",
        }
        for row in size.values():
            assert row["median_ms"] > 0 and row["p95_ms"] >= row["median_ms"] and row["operations"] > 0


def test_capacity_smoke_reports_the_mix_against_live_without_errors():
    report = _run("bench.capacity")
    (step,) = report["steps"]
    assert step["errors"] == 0, step["endpoints"]
    assert set(step["endpoints"]) == {
        "POST /api/sessions/",
        "GET /api/me/",
        "GET /api/sessions/",
        "GET /api/leaderboard/?period=week",
        "GET /api/health/live/",
    }
    assert step["rps"] > 0 and step["live_alone"]["rps"] > 0 and step["operations_per_request"] > 0
