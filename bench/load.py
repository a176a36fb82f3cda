"""``make load``: locust, headless, against gunicorn serving the API on the embedded database.

Steps of 10, 25 and 50 concurrent users, each for a fixed time. For each step it reports p50,
p95 and p99 per endpoint, errors, requests/s, MongoDB operations/s (from our own /metrics)
against M0's budget of ~100/s, pool checkouts and waits, connections (workers × pool size)
against M0's 500, and storage per 1,000 study sessions. Results: bench/results/load-<time>.json.

The run raises THROTTLE_RATE_LOGIN, THROTTLE_RATE_REGISTER and THROTTLE_RATE_STUDY_SESSION to
100000/min for itself: 50 users log in from one address within seconds, and a simulated learner
logs sessions faster than a person would, which the production defaults rightly refuse.
"""

from __future__ import annotations

import argparse
import csv
import secrets
import subprocess
import sys
import time
from pathlib import Path

from bench.stack import (
    OPS_METRIC,
    POOL_SIZE,
    ROOT,
    ApiStack,
    delta,
    load_average,
    report_header,
    write_report,
)
from studymaster.embedded import EmbeddedMongo

M0_OPS_PER_SECOND = 100
M0_CONNECTIONS = 500
M0_STORAGE_BYTES = 512 * 1024 * 1024
SESSIONS_PER_USER_PER_YEAR = 365  # the profile: one study session a day
WORKERS = 2


def _create_users(stack: ApiStack, password: str, count: int) -> None:
    # One PBKDF2 hash shared by all: hashing is deliberately slow (~0.4 s each here).
    code = (
        "import os\n"
        "from django.contrib.auth.hashers import make_password\n"
        "from accounts.models import User\n"
        "from accounts.usernames import username_fields\n"
        "hashed = make_password(os.environ['LOAD_USER_PASSWORD'])\n"
        f"User.objects.bulk_create([User(username=f'load{{n:03d}}', **username_fields(f'load{{n:03d}}'), "
        f"email=f'load{{n:03d}}@example.com', password=hashed) for n in range({count})])\n"
    )
    stack.django(code, LOAD_USER_PASSWORD=password)


def _storage(server: EmbeddedMongo, database: str) -> dict:
    with server.client() as client:
        db = client[database]
        sessions = db.sessions_app_studysession.count_documents({})
        per_collection = {}
        for name in ("sessions_app_studysession", "gamification_pointsentry"):
            stats = db.command("collStats", name)
            per_collection[name] = stats.get("size", 0) + stats.get("totalIndexSize", 0)
    session_bytes = sum(per_collection.values())
    per_1000 = session_bytes / sessions * 1000 if sessions else 0
    per_user_year = per_1000 / 1000 * SESSIONS_PER_USER_PER_YEAR
    return {
        "study_sessions": sessions,
        "bytes_per_1000_sessions": round(per_1000),
        "profile": f"{SESSIONS_PER_USER_PER_YEAR} study sessions a year, with their ledger entries and indexes",
        "users_fitting_m0_for_a_year": int(M0_STORAGE_BYTES / per_user_year) if per_user_year else None,
    }


def _locust(port: int, users: int, seconds: int, csv_prefix: Path, env: dict) -> dict:
    """One step. ``env`` names the accounts it uses (LOAD_USER_OFFSET): its own, never an earlier
    step's, whose study sessions would overlap the new ones in time and be refused."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(ROOT / "bench" / "locustfile.py"),
            "--headless",
            "-u",
            str(users),
            "-r",
            str(max(1, users // 5)),
            "-t",
            f"{seconds}s",
            "--host",
            f"http://127.0.0.1:{port}",
            "--csv",
            str(csv_prefix),
            "--only-summary",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with open(f"{csv_prefix}_stats.csv") as handle:
        rows = list(csv.DictReader(handle))
    endpoints = {}
    for row in rows:
        if row["Name"] == "Aggregated":
            continue
        endpoints[f"{row['Type']} {row['Name']}"] = {
            "requests": int(row["Request Count"]),
            "failures": int(row["Failure Count"]),
            "p50_ms": float(row["50%"]),
            "p95_ms": float(row["95%"]),
            "p99_ms": float(row["99%"]),
            "rps": round(float(row["Requests/s"]), 2),
        }
    total = next(r for r in rows if r["Name"] == "Aggregated")
    return {
        "endpoints": endpoints,
        "requests": int(total["Request Count"]),
        "errors": int(total["Failure Count"]),
        "rps": round(float(total["Requests/s"]), 2),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="10,25,50", help="Concurrent users per step.")
    parser.add_argument("--seconds", type=int, default=60, help="Length of each step.")
    parser.add_argument("--smoke", action="store_true", help="One short step of 5 users.")
    args = parser.parse_args(argv)
    steps = [5] if args.smoke else [int(s) for s in args.steps.split(",")]
    seconds = 12 if args.smoke else args.seconds
    load_before = load_average()
    password = secrets.token_urlsafe(16)
    with ApiStack(database="load", workers=WORKERS, threads=1) as stack:
        env = {**stack.env, "LOAD_USER_PASSWORD": password, "LOAD_USER_PREFIX": "load"}
        _create_users(stack, password, sum(steps))
        stack.serve()
        results = []
        for index, users in enumerate(steps):
            before = stack.metrics()
            started = time.monotonic()
            accounts = {"LOAD_USER_OFFSET": str(sum(steps[:index])), "LOAD_USER_COUNT": str(users)}
            step = _locust(stack.port, users, seconds, stack.work / f"step{users}", {**env, **accounts})
            elapsed = time.monotonic() - started
            after = stack.metrics()
            ops = delta(before, after, OPS_METRIC)
            ops_per_second = ops / elapsed
            live_p95 = step["endpoints"].get("GET /api/health/live/", {}).get("p95_ms")
            step.update(
                users=users,
                seconds=round(elapsed, 1),
                mongodb_ops_per_second=round(ops_per_second, 1),
                m0_budget_share=round(ops_per_second / M0_OPS_PER_SECOND, 2),
                active_users_m0_holds=int(M0_OPS_PER_SECOND / (ops_per_second / users)) if ops else None,
                pool_checkouts=delta(before, after, "studymaster_mongodb_pool_checkouts_total"),
                pool_wait_seconds=round(
                    delta(before, after, "studymaster_mongodb_pool_checkout_wait_seconds_sum"), 3
                ),
                pool_checkout_failures=delta(
                    before, after, "studymaster_mongodb_pool_checkout_failures_total"
                ),
                connections_max=WORKERS * POOL_SIZE,
                live_p95_ms=live_p95,
                p95_ratio_to_live={
                    name: round(row["p95_ms"] / live_p95, 1) if live_p95 else None
                    for name, row in step["endpoints"].items()
                },
            )
            results.append(step)
        storage = _storage(stack.server, stack.database)
    report = {
        **report_header(smoke=args.smoke, load_before=load_before),
        "gunicorn_workers": WORKERS,
        "pool_size": POOL_SIZE,
        "connections_vs_m0": f"{WORKERS * POOL_SIZE} of {M0_CONNECTIONS}",
        "steps": results,
        "storage": storage,
    }
    write_report("load", report, render(report))
    return 0


def render(report: dict) -> str:
    lines = [report["throttle_note"] + "."]
    for step in report["steps"]:
        lines.append(
            f"\n{step['users']} users, {step['seconds']} s: {step['requests']} requests, {step['errors']} errors, "
            f"{step['rps']} req/s, MongoDB {step['mongodb_ops_per_second']} ops/s "
            f"({step['m0_budget_share']:.0%} of M0's ~100/s; M0 holds ~{step['active_users_m0_holds']} such users), "
            f"pool checkouts {step['pool_checkouts']:.0f} (waited {step['pool_wait_seconds']} s in all, "
            f"{step['pool_checkout_failures']:.0f} failed), "
            f"connections <= {step['connections_max']} of {M0_CONNECTIONS}"
        )
        lines.append(f"  {'endpoint':<36} {'p50':>7} {'p95':>7} {'p99':>7} {'fail':>5} {'p95/live':>8}")
        for name, row in sorted(step["endpoints"].items()):
            lines.append(
                f"  {name:<36} {row['p50_ms']:>7.0f} {row['p95_ms']:>7.0f} {row['p99_ms']:>7.0f} "
                f"{row['failures']:>5} {step['p95_ratio_to_live'][name] or 0:>8.1f}"
            )
    storage = report["storage"]
    lines.append(
        f"\nstorage: {storage['bytes_per_1000_sessions']} bytes per 1,000 study sessions; "
        f"M0's 512 MB holds ~{storage['users_fitting_m0_for_a_year']} users at {storage['profile']}."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
