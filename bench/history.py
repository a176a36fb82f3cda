"""History growth: what a request costs one learner with 10, 1,000 and 3,000 prior study sessions.

Each learner's history is built through the services (``study_session_log``) with the clock
moved forward: up to three sessions a day, five subjects, a day off every ninth day, each
session logged minutes after it ended; the last study day is yesterday. Then gunicorn (production
settings, ``gunicorn.conf.py``) serves the API, and for each learner in turn, round-robin so
that the machine's noise falls on every size alike, the bench times

- ``POST /api/sessions/``: a one-minute session that ended minutes ago (today's first: it
  extends yesterday's streak), then ``DELETE`` of it, so every round sees the same history;
- ``GET /api/stats/`` over the 366 days up to today, and ``GET /api/me/``.

It reports the median and p95 of each, the ratio of each median to the smallest history's
(target at 3,000: within 1.3x of 10), and the MongoDB operations per request (our /metrics).
Results: bench/results/history-<time>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time

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

SIZES = (10, 1000, 3000)
TARGET_RATIO = 1.3
SUBJECTS = ["Mathematics", "Physics", "History", "Spanish", "Computer science"]
ENDPOINTS = (
    "POST /api/sessions/",
    "DELETE /api/sessions/{id}/",
    "GET /api/stats/ (366 days)",
    "GET /api/me/",
)


def history_plan(sessions: int, *, last_day: dt.date):
    """(started_at, minutes, subject) of ``sessions`` study sessions ending on ``last_day``, oldest first."""
    per_day = []
    day_number = 0
    while sum(per_day) < sessions:
        per_day.append(0 if day_number % 9 == 8 else 1 + day_number % 3)
        day_number += 1
    per_day[-1] -= sum(per_day) - sessions
    first_day = last_day - dt.timedelta(days=len(per_day) - 1)
    count = 0
    for offset, on_that_day in enumerate(per_day):
        day = first_day + dt.timedelta(days=offset)
        for slot in range(on_that_day):
            started = dt.datetime.combine(day, dt.time(7 + 4 * slot), tzinfo=dt.UTC)
            yield started, 25 + 5 * (count % 8), SUBJECTS[count % len(SUBJECTS)]
            count += 1


def build_learner(username: str, sessions: int) -> None:
    """Log ``username``'s history through the services, each session minutes after it ended."""
    from accounts.models import User
    from sessions_app.services import study_session_log

    user = User.objects.get(username=username)
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    for started, minutes, subject in history_plan(sessions, last_day=yesterday):
        logged_at = started + dt.timedelta(minutes=minutes + 5)
        study_session_log(
            user=user, subject=subject, duration_minutes=minutes, started_at=started, now=logged_at
        )


def _timed(client: Client, method: str, path: str, body=None, expect: int = 200) -> tuple[float, bytes]:
    status, data, seconds = client.request(method, path, body)
    if status != expect:
        raise RuntimeError(f"{method} {path}: {status} {data[:300]!r}")
    return seconds, data


def _round(client: Client, today: dt.date) -> dict[str, float]:
    """One of each request for one learner; seconds per endpoint."""
    started = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)).replace(microsecond=0)
    body = {"subject": "Bench", "duration_minutes": 1, "started_at": started.isoformat()}
    post, data = _timed(client, "POST", "/api/sessions/", body, expect=201)
    session_id = json.loads(data)["id"]
    delete, _ = _timed(client, "DELETE", f"/api/sessions/{session_id}/", expect=204)
    stats_path = f"/api/stats/?from={today - dt.timedelta(days=365)}&to={today}"
    stats, _ = _timed(client, "GET", stats_path)
    me, _ = _timed(client, "GET", "/api/me/")
    return dict(zip(ENDPOINTS, (post, delete, stats, me), strict=True))


def _operations(stack: ApiStack, client: Client, today: dt.date, rounds: int = 3) -> dict[str, float]:
    """MongoDB operations per request of each endpoint, from /metrics around each request."""
    counts = dict.fromkeys(ENDPOINTS, 0.0)
    for _ in range(rounds):
        started = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)).replace(microsecond=0)
        before = stack.metrics()
        _, data = _timed(
            client,
            "POST",
            "/api/sessions/",
            {"subject": "Bench", "duration_minutes": 1, "started_at": started.isoformat()},
            expect=201,
        )
        middle = stack.metrics()
        counts[ENDPOINTS[0]] += delta(before, middle, OPS_METRIC)
        for name, method, path, expect in (
            (ENDPOINTS[1], "DELETE", f"/api/sessions/{json.loads(data)['id']}/", 204),
            (ENDPOINTS[2], "GET", f"/api/stats/?from={today - dt.timedelta(days=365)}&to={today}", 200),
            (ENDPOINTS[3], "GET", "/api/me/", 200),
        ):
            before = stack.metrics()
            _timed(client, method, path, expect=expect)
            counts[name] += delta(before, stack.metrics(), OPS_METRIC)
    return {name: round(total / rounds, 2) for name, total in counts.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default=",".join(map(str, SIZES)), help="Prior study sessions per learner."
    )
    parser.add_argument("--rounds", type=int, default=40, help="Timed rounds per learner.")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: gunicorn.conf.py's).")
    parser.add_argument(
        "--threads", type=int, help="gunicorn threads per worker (default: gunicorn.conf.py's)."
    )
    parser.add_argument("--smoke", action="store_true", help="Histories of 3 and 30 sessions, 3 rounds.")
    args = parser.parse_args(argv)
    sizes = [3, 30] if args.smoke else [int(size) for size in args.sizes.split(",")]
    rounds = 3 if args.smoke else args.rounds
    load_before = load_average()
    with ApiStack(database="history", workers=args.workers, threads=args.threads) as stack:
        names = {size: f"history{size}" for size in sizes}
        create_users(stack, list(names.values()))
        build_seconds = {}
        for size, username in names.items():
            started = time.monotonic()
            stack.django(f"from bench.history import build_learner\nbuild_learner({username!r}, {size})")
            build_seconds[size] = round(time.monotonic() - started, 1)
            print(f"built {size} sessions in {build_seconds[size]} s", flush=True)
        stack.serve()
        tokens = mint_tokens(stack, list(names.values()))
        clients = {size: Client(stack.port, tokens[username]) for size, username in names.items()}
        today = dt.datetime.now(dt.UTC).date()
        for client in clients.values():  # warm-up: imports, caches, connections
            _round(client, today)
        timings = {size: {name: [] for name in ENDPOINTS} for size in sizes}
        for _ in range(rounds):
            for size, client in clients.items():
                for name, seconds in _round(client, today).items():
                    timings[size][name].append(seconds * 1000)
        operations = {size: _operations(stack, client, today) for size, client in clients.items()}
    smallest = sizes[0]
    results = {}
    for size in sizes:
        results[size] = {}
        for name in ENDPOINTS:
            values = timings[size][name]
            median = percentile(values, 0.5)
            results[size][name] = {
                "median_ms": round(median, 1),
                "p95_ms": round(percentile(values, 0.95), 1),
                "ratio_to_smallest": round(median / percentile(timings[smallest][name], 0.5), 2),
                "operations": operations[size][name],
            }
    report = {
        **report_header(smoke=args.smoke, load_before=load_before),
        "rounds": rounds,
        "gunicorn": {
            "workers": args.workers or "gunicorn.conf.py",
            "threads": args.threads or "gunicorn.conf.py",
        },
        "build_seconds": build_seconds,
        "target": f"each median at {sizes[-1]} within {TARGET_RATIO}x of its median at {smallest}",
        "sizes": results,
    }
    write_report("history", report, render(report))
    return 0


def render(report: dict) -> str:
    sizes = list(report["sizes"])
    lines = [
        f"{report['throttle_note']}. Load average before {report['load_average_before']}, "
        f"after {report['load_average_after']}.",
        "History built through the services: "
        + ", ".join(f"{size} sessions in {seconds} s" for size, seconds in report["build_seconds"].items()),
        "",
        f"{'endpoint':<28} {'prior sessions':>14} {'median ms':>10} {'p95 ms':>8} {'x smallest':>10} {'ops':>5}",
    ]
    for name in ENDPOINTS:
        for size in sizes:
            row = report["sizes"][size][name]
            lines.append(
                f"{name:<28} {size:>14} {row['median_ms']:>10.1f} {row['p95_ms']:>8.1f} "
                f"{row['ratio_to_smallest']:>10.2f} {row['operations']:>5.1f}"
            )
    largest = report["sizes"][sizes[-1]]
    met = all(row["ratio_to_smallest"] <= TARGET_RATIO for row in largest.values())
    lines.append(f"\ntarget ({report['target']}): {'met' if met else 'MISSED'}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
