"""Capacity, closed-loop: how many requests a second the API answers when nobody waits.

Each simulated user (a thread with its own keep-alive connection and account) sends its next
request as soon as the last is answered: no think time, so requests per second measure what the
stack can serve, not the load offered (``make load`` waits 0.5-1.5 s between a user's requests).
The mix: 25 % study session logs, 35 % ``/api/me/``, 20 % session lists, 10 % the weekly
leaderboard, 10 % ``/api/health/live/``. At each step (10, 25, 50 users by default) it first runs
``/api/health/live/`` alone with as many users, the web stack's ceiling on this machine, then
the mix. gunicorn serves with the production settings and ``gunicorn.conf.py`` (workers and
threads as given, else the file's) on an embedded server.

Reported per step: requests/s, errors, p50/p95/p99 per endpoint, the mix's p95 against live's
(target: at 50 users >= 100 requests/s, 0 errors, p95 <= 10x live's), MongoDB operations per
request (our /metrics), and what M0's ~100 operations/s then holds. Results:
bench/results/capacity-<time>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import threading
import time
from collections import defaultdict

from bench.stack import (
    OPS_METRIC,
    ApiStack,
    Client,
    create_users,
    delta,
    load_average,
    mint_tokens,
    percentile,
    report_header,
    write_report,
)

M0_OPS_PER_SECOND = 100
MIX = (
    ("POST /api/sessions/", 25),
    ("GET /api/me/", 35),
    ("GET /api/sessions/", 20),
    ("GET /api/leaderboard/?period=week", 10),
    ("GET /api/health/live/", 10),
)
LIVE = "GET /api/health/live/"
TARGET_USERS, TARGET_RPS, TARGET_P95_RATIO = 50, 100, 10


class SimulatedUser(threading.Thread):
    """Sends requests back to back until ``deadline``; records (endpoint, ok, seconds)."""

    def __init__(self, port: int, token: str, mix, deadline: float, seed: int):
        super().__init__(daemon=True)
        self.client = Client(port, token)
        self.names = [name for name, _ in mix]
        self.weights = [weight for _, weight in mix]
        self.deadline = deadline
        self.random = random.Random(seed)
        self.samples: list[tuple[str, bool, float]] = []
        # Study sessions go back in time from now, 2 minutes apart, so they never overlap.
        self.next_start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=2)

    def _send(self, name: str) -> tuple[bool, float]:
        method, path = name.split(" ", 1)
        body = None
        if name == "POST /api/sessions/":
            body = {"subject": "Capacity", "duration_minutes": 1, "started_at": self.next_start.isoformat()}
            self.next_start -= dt.timedelta(minutes=2)
        try:
            status, _, seconds = self.client.request(method, path, body)
        except OSError:
            return False, 0.0
        return status < 400, seconds

    def run(self) -> None:
        while time.monotonic() < self.deadline:
            name = self.random.choices(self.names, self.weights)[0]
            ok, seconds = self._send(name)
            self.samples.append((name, ok, seconds))
        self.client.close()


def run_step(stack: ApiStack, tokens: list[str], mix, seconds: float, seed: int) -> dict:
    """``len(tokens)`` users for ``seconds``; requests/s, errors, percentiles, operations."""
    before, cpu_before = stack.metrics(), stack.cpu_seconds()
    deadline = time.monotonic() + seconds
    users = [SimulatedUser(stack.port, token, mix, deadline, seed + n) for n, token in enumerate(tokens)]
    started = time.monotonic()
    for user in users:
        user.start()
    for user in users:
        user.join()
    elapsed = time.monotonic() - started
    after, cpu_after = stack.metrics(), stack.cpu_seconds()
    by_endpoint: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    for user in users:
        for name, ok, took in user.samples:
            by_endpoint[name].append(took * 1000)
            errors[name] += not ok
    everything = [took for values in by_endpoint.values() for took in values]
    requests = len(everything)
    operations = delta(before, after, OPS_METRIC)
    return {
        "users": len(tokens),
        "seconds": round(elapsed, 1),
        "requests": requests,
        "errors": sum(errors.values()),
        "rps": round(requests / elapsed, 1),
        "p50_ms": round(percentile(everything, 0.5), 1),
        "p95_ms": round(percentile(everything, 0.95), 1),
        "p99_ms": round(percentile(everything, 0.99), 1),
        "operations_per_request": round(operations / requests, 2) if requests else None,
        "operations_per_second": round(operations / elapsed, 1),
        # Share of one core each part used during the step (2 cores: at most 2.0 in all).
        "cores_used": {part: round((cpu_after[part] - cpu_before[part]) / elapsed, 2) for part in cpu_after},
        "endpoints": {
            name: {
                "requests": len(values),
                "errors": errors[name],
                "p50_ms": round(percentile(values, 0.5), 1),
                "p95_ms": round(percentile(values, 0.95), 1),
                "p99_ms": round(percentile(values, 0.99), 1),
            }
            for name, values in sorted(by_endpoint.items())
        },
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="10,25,50", help="Concurrent users per step.")
    parser.add_argument("--seconds", type=float, default=30, help="Length of each mix step.")
    parser.add_argument("--live-seconds", type=float, default=10, help="Length of each live-only step.")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: gunicorn.conf.py's).")
    parser.add_argument(
        "--threads", type=int, help="gunicorn threads per worker (default: gunicorn.conf.py's)."
    )
    parser.add_argument("--smoke", action="store_true", help="One step of 5 users, 4 s each.")
    args = parser.parse_args(argv)
    steps = [5] if args.smoke else [int(users) for users in args.steps.split(",")]
    seconds, live_seconds = (4, 2) if args.smoke else (args.seconds, args.live_seconds)
    load_before = load_average()
    results = []
    with ApiStack(database="capacity", workers=args.workers, threads=args.threads) as stack:
        usernames = [f"cap{step}u{n:03d}" for step in steps for n in range(step)]
        create_users(stack, usernames)
        stack.serve()
        for index, users in enumerate(steps):
            # Each step has accounts of its own: an earlier step's sessions would overlap in time.
            names = [f"cap{users}u{n:03d}" for n in range(users)]
            tokens = mint_tokens(stack, names)
            ordered = [tokens[name] for name in names]
            live = run_step(stack, ordered, ((LIVE, 1),), live_seconds, seed=index * 1000)
            mix = run_step(stack, ordered, MIX, seconds, seed=index * 1000 + 500)
            mix["live_alone"] = {key: live[key] for key in ("requests", "errors", "rps", "p50_ms", "p95_ms")}
            mix["p95_ratio_to_live"] = round(mix["p95_ms"] / live["p95_ms"], 1) if live["p95_ms"] else None
            ops = mix["operations_per_request"] or 0
            mix["m0_requests_per_second"] = round(M0_OPS_PER_SECOND / ops, 1) if ops else None
            results.append(mix)
            print(render_step(mix), flush=True)
    report = {
        **report_header(smoke=args.smoke, load_before=load_before),
        "gunicorn": {
            "workers": args.workers or "gunicorn.conf.py",
            "threads": args.threads or "gunicorn.conf.py",
        },
        "mix": dict(MIX),
        "target": f"at {TARGET_USERS} users >= {TARGET_RPS} requests/s, 0 errors, p95 <= {TARGET_P95_RATIO}x live's",
        "steps": results,
    }
    write_report("capacity", report, render(report))
    return 0


def render_step(step: dict) -> str:
    live = step["live_alone"]
    lines = [
        f"\n{step['users']} users, {step['seconds']} s: {step['requests']} requests, {step['errors']} errors, "
        f"{step['rps']} req/s, p50/p95/p99 {step['p50_ms']:.0f}/{step['p95_ms']:.0f}/{step['p99_ms']:.0f} ms; "
        f"live alone {live['rps']} req/s, p95 {live['p95_ms']:.0f} ms (mix p95 = {step['p95_ratio_to_live']}x); "
        f"{step['operations_per_request']} MongoDB ops/request, {step['operations_per_second']} ops/s "
        f"(M0's ~{M0_OPS_PER_SECOND} ops/s holds ~{step['m0_requests_per_second']} such requests/s)",
        "  cores used: " + ", ".join(f"{part} {used}" for part, used in step["cores_used"].items()),
        f"  {'endpoint':<36} {'requests':>8} {'errors':>6} {'p50':>6} {'p95':>6} {'p99':>6}",
    ]
    for name, row in step["endpoints"].items():
        lines.append(
            f"  {name:<36} {row['requests']:>8} {row['errors']:>6} {row['p50_ms']:>6.0f} "
            f"{row['p95_ms']:>6.0f} {row['p99_ms']:>6.0f}"
        )
    return "\n".join(lines)


def render(report: dict) -> str:
    lines = [
        f"\n{report['throttle_note']}. Load average before {report['load_average_before']}, "
        f"after {report['load_average_after']}.",
        f"{'users':>5} {'req/s':>7} {'errors':>6} {'p95 ms':>7} {'live req/s':>10} {'live p95':>8} "
        f"{'p95/live':>8} {'ops/req':>7}",
    ]
    for step in report["steps"]:
        live = step["live_alone"]
        lines.append(
            f"{step['users']:>5} {step['rps']:>7.1f} {step['errors']:>6} {step['p95_ms']:>7.0f} "
            f"{live['rps']:>10.1f} {live['p95_ms']:>8.0f} {step['p95_ratio_to_live'] or 0:>8.1f} "
            f"{step['operations_per_request'] or 0:>7.2f}"
        )
    target = next((step for step in report["steps"] if step["users"] == TARGET_USERS), None)
    if target:
        met = (
            target["rps"] >= TARGET_RPS
            and target["errors"] == 0
            and (target["p95_ratio_to_live"] or 0) <= TARGET_P95_RATIO
        )
        lines.append(f"target ({report['target']}): {'met' if met else 'MISSED'}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
