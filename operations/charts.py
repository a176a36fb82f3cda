"""What the admin health page draws: usage gauges and the SVG geometry of the latency chart.

Plain numbers for ``operations/health_admin.html``, computed from a health report
(:func:`operations.health.health_report`); no database access.
"""

from __future__ import annotations

CHART_MAX_COMMANDS = 12
MIB = 1024 * 1024


def latency_chart(commands: dict, *, width: int = 560, bar_height: int = 14) -> dict:
    """Geometry of a horizontal bar chart of p50 and p95 per command, for an inline SVG.

    The CHART_MAX_COMMANDS slowest commands by p95, slowest first, on one linear scale.
    """
    label_width, gap = 130, 10
    scale_max = max((stats["p95_ms"] for stats in commands.values()), default=0) or 1.0
    plot_width = width - label_width - 70
    rows = []
    slowest = sorted(commands.items(), key=lambda item: -item[1]["p95_ms"])[:CHART_MAX_COMMANDS]
    for index, (name, stats) in enumerate(slowest):
        top = index * (2 * bar_height + gap)
        rows.append(
            {
                "name": name,
                "count": stats["count"],
                "p50_ms": stats["p50_ms"],
                "p95_ms": stats["p95_ms"],
                "y": top,
                "y2": top + bar_height,
                "text_y": top + bar_height - 3,
                "text2_y": top + 2 * bar_height - 3,
                "p50_width": max(1, round(stats["p50_ms"] / scale_max * plot_width)),
                "p95_width": max(1, round(stats["p95_ms"] / scale_max * plot_width)),
            }
        )
    return {
        "rows": rows,
        "width": width,
        "height": max(1, len(rows) * (2 * bar_height + gap)),
        "bar_height": bar_height,
        "label_width": label_width,
        "value_x": label_width + plot_width + 6,
    }


def usage_gauges(report: dict) -> list[dict]:
    """Used-share bars of a health report: storage, connections, operations/s against M0's limits."""
    database = report["database"]
    storage = database.get("storage", {})
    connections = database.get("connections", {})
    operations = report["operations"]
    items = [
        (
            "Storage",
            storage.get("used_share"),
            f"{storage['used_bytes'] / MIB:.1f} MB of {storage['quota_bytes'] // MIB} MB"
            if storage.get("known")
            else storage.get("reason", "unknown"),
        ),
        (
            "Connections",
            connections.get("used_share"),
            f"{connections['current']} of {connections['limit']}"
            if connections.get("known")
            else connections.get("reason", "unknown"),
        ),
        (
            "Operations/s",
            operations["used_share"],
            f"{operations['per_second']} of ~{operations['budget_per_second']}",
        ),
    ]
    gauges = []
    for label, share, text in items:
        percent = None if share is None else min(100, round(share * 100))
        level = "unknown" if share is None else "bad" if share >= 0.9 else "warn" if share >= 0.7 else "ok"
        gauges.append({"label": label, "percent": percent, "text": text, "level": level})
    return gauges
