"""The admin health page's drawing: the latency chart's geometry and the usage gauges."""

from operations.charts import latency_chart, usage_gauges


def test_latency_chart_scales_bars_to_the_slowest_p95():
    chart = latency_chart(
        {
            "find": {"count": 3, "p50_ms": 2.0, "p95_ms": 10.0},
            "ping": {"count": 1, "p50_ms": 1.0, "p95_ms": 1.0},
        }
    )
    find, ping = chart["rows"]
    assert find["name"] == "find"
    assert find["p95_width"] == chart["value_x"] - 6 - chart["label_width"]
    assert ping["p95_width"] < find["p50_width"] < find["p95_width"]


def _report(*, storage: dict, connections: dict, operations_share: float) -> dict:
    operations = {
        "per_second": operations_share * 100,
        "budget_per_second": 100,
        "used_share": operations_share,
    }
    return {"database": {"storage": storage, "connections": connections}, "operations": operations}


def test_gauges_show_each_share_with_its_level_and_what_is_not_known():
    storage = {"known": True, "used_bytes": 460 * 2**20, "quota_bytes": 512 * 2**20, "used_share": 0.8984}
    connections = {"known": False, "reason": "serverStatus refused (authorization)"}
    gauges = usage_gauges(_report(storage=storage, connections=connections, operations_share=0.95))
    assert gauges == [
        {"label": "Storage", "percent": 90, "text": "460.0 MB of 512 MB", "level": "warn"},
        {
            "label": "Connections",
            "percent": None,
            "text": "serverStatus refused (authorization)",
            "level": "unknown",
        },
        {"label": "Operations/s", "percent": 95, "text": "95.0 of ~100", "level": "bad"},
    ]
