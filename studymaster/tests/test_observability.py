"""The listeners behind /metrics and the health detail, and the gunicorn hooks of multi-process metrics."""

from types import SimpleNamespace

import pytest

from studymaster.observability import CommandStats, PoolMetricsListener, http_labels, pool_stats


@pytest.mark.parametrize(
    ("method", "status", "labels"),
    [
        ("GET", 200, ("GET", "200")),
        ("PROPFIND", 207, ("OTHER", "207")),
        ("DELETE", 404, ("DELETE", "404")),
        ("POST", 299, ("POST", "200")),
        ("POST", 999, ("POST", "500")),
    ],
)
def test_http_labels_come_from_fixed_sets(rf, method, status, labels):
    request = rf.generic(method, "/x")
    labelled = http_labels(request, SimpleNamespace(status_code=status))
    assert (labelled["method"], labelled["status"]) == labels and labelled["route"] == "unmatched"


def test_command_stats_percentiles_and_rate():
    stats = CommandStats(window_seconds=10)
    for millis in range(1, 101):
        stats.record("find", millis / 1000)
    assert stats.latencies()["find"] == {"count": 100, "p50_ms": 50.0, "p95_ms": 95.0}
    assert stats.operations_per_second() == 10.0


def test_pool_listener_tracks_open_in_use_waiting_and_failures():
    class Event:
        reason = "timeout"
        duration = 0.01
        options = {"maxPoolSize": 10}

    before = pool_stats.snapshot()
    listener = PoolMetricsListener()
    listener.connection_created(Event)
    listener.connection_check_out_started(Event)
    assert pool_stats.snapshot()["waiting"] == before["waiting"] + 1
    listener.connection_checked_out(Event)
    listener.connection_check_out_started(Event)
    listener.connection_check_out_failed(Event)
    after = pool_stats.snapshot()
    assert after["open"] == before["open"] + 1
    assert after["in_use"] == before["in_use"] + 1
    assert after["waiting"] == before["waiting"]
    assert after["checkout_failures"] == before["checkout_failures"] + 1
    listener.connection_checked_in(Event)
    listener.connection_closed(Event)
    assert pool_stats.snapshot()["in_use"] == before["in_use"]


def test_gunicorn_hooks_clear_stale_files_and_forget_dead_workers(tmp_path, monkeypatch):
    from studymaster import gunicorn_conf

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    (tmp_path / "counter_123.db").write_bytes(b"old")
    (tmp_path / "gauge_livesum_456.db").write_bytes(b"live")
    gunicorn_conf.on_starting(server=None)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "gauge_livesum_456.db").write_bytes(b"live")

    class Worker:
        pid = 456

    gunicorn_conf.child_exit(server=None, worker=Worker)
    assert not (tmp_path / "gauge_livesum_456.db").exists()
