"""``make bench``, live sync part: sync_atlas's engine with the target 10 ms away each way.

One run, in this process, on the embedded servers; the target is reached through
``bench.delay_proxy`` (10 ms each way, so every round trip costs at least 20 ms, as to a nearby
Atlas region). Three measurements:

- **events/s under a steady write load**: a backlog of mixed writes (inserts, updates, deletes on a
  collection of its own) made while no sync runs, plus a steady 50 writes/s during the measurement;
  the sync (unpaced, ``--max-ops-per-second 0``) applies them until caught up. The floor replays the
  same events, read from the same change stream, with ordered ``bulk_write`` batches of 1,000
  (a ReplaceOne with upsert per insert/update/replace, a DeleteOne per delete) through the same proxy.
  ratio = sync events/s / floor events/s.
- **lag p95 at 50 writes/s**: the sync at its default pacing (80 operations/s on the target) while
  the source takes 50 writes/s for 30 s; the lag (seconds) sampled every 0.25 s.
- **the cut-over's freeze**, ``--cutover`` at the demo's size (7,000 documents) and at 10x.

Results are printed and written to ``bench/results/sync-<time>.json``; the machine's load average
is recorded beside them (other work on a shared machine slows every figure).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGETS = {"events_ratio": 0.7, "lag_p95_seconds": 2.0, "freeze_seconds": 10.0}
DELAY_MS = 10
BACKLOG_WRITES = 2000
STEADY_WRITES_PER_SECOND = 50
LAG_SECONDS = 20
# The floor sends a command per run of one kind of write, each a round trip: it is slow, so it
# replays the first events only (its rate is per event).
FLOOR_EVENTS = 400


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studymaster.settings.dev")
    import django

    django.setup()


class SteadyWriter(threading.Thread):
    """``rate`` writes a second on ``db.bench_live`` (insert, update, delete in turn) until stopped."""

    def __init__(self, db, rate: float, *, start_at: int = 10**6) -> None:
        super().__init__(daemon=True)
        self.db, self.interval, self.n = db, 1.0 / rate, start_at
        self.stopping = threading.Event()
        self.writes = 0

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.stopping.is_set():
            write(self.db, self.n)
            self.n += 1
            self.writes += 1
            next_at += self.interval
            time.sleep(max(0.0, next_at - time.monotonic()))


def write(db, n: int) -> None:
    """The n-th write of the mix: two inserts, then an update of an earlier document, then a delete."""
    collection = db["bench_live"]
    kind = n % 4
    if kind in (0, 1):
        collection.insert_one({"_id": n, "n": n, "payload": "p" * 200, "tags": ["a", "b"]})
    elif kind == 2:
        collection.update_one({"_id": n - 2}, {"$set": {"seen": True}, "$inc": {"n": 1}})
    else:
        collection.delete_one({"_id": n - 7})


def state(target_db) -> dict:
    """The sync's saved state on the target."""
    from migration_tools.bsonfiles import DECODE
    from migration_tools.sync import STATE_COLLECTION

    return target_db.get_collection(STATE_COLLECTION, codec_options=DECODE).find_one({"_id": "state"})


def options(source_uri, target_uri, db_name, **overrides):
    from migration_tools.sync import SyncOptions

    return SyncOptions(
        source_uri=source_uri, target_uri=target_uri, source_db=db_name, target_db=db_name, **overrides
    )


def floor_replay(source_db, target_db, token, until) -> dict:
    """The raw floor: the change stream from ``token`` up to ``until``, replayed with bulk_write."""
    from pymongo import DeleteOne, ReplaceOne

    from migration_tools.bsonfiles import RAW

    started = time.perf_counter()
    events = 0
    pending: dict[str, list] = {}
    stream = source_db.with_options(codec_options=RAW).watch(
        full_document="updateLookup", resume_after=token, max_await_time_ms=200, batch_size=1000
    )

    def flush() -> None:
        for name, operations in pending.items():
            if operations:
                target_db.get_collection(name, codec_options=RAW).bulk_write(operations, ordered=True)
        pending.clear()

    with stream:
        while True:
            event = stream.try_next()
            if event is None:
                flush()
                continue
            if event["clusterTime"] > until:
                break
            kind, name = event["operationType"], event["ns"]["coll"]
            if kind == "delete":
                operation = DeleteOne(event["documentKey"])
            elif event.get("fullDocument") is not None:
                operation = ReplaceOne(event["documentKey"], event["fullDocument"], upsert=True)
            else:
                continue  # an update of a document deleted since: its delete follows
            pending.setdefault(name, []).append(operation)
            events += 1
            if sum(len(ops) for ops in pending.values()) >= 1000:
                flush()
            if event["clusterTime"] == until or events >= FLOOR_EVENTS:
                break
        flush()
    seconds = time.perf_counter() - started
    return {"events": events, "seconds": round(seconds, 3), "events_per_second": round(events / seconds, 1)}


def bench_events(source, target_uri, db_name) -> dict:
    """Events/s of the sync (unpaced) under a backlog plus a steady load, against the raw floor."""
    from pymongo import MongoClient

    from migration_tools.sync import LiveSync

    source_client = MongoClient(source.uri())
    source_db = source_client[db_name]
    target_client = MongoClient(target_uri)
    LiveSync(
        options(source.uri(), target_uri, db_name, max_ops_per_second=0, stop_when="caught_up"), say=_quiet
    ).run()
    token = state(target_client[db_name])["stream"]["token"]
    for n in range(BACKLOG_WRITES):
        write(source_db, n)
    steady = SteadyWriter(source_db, STEADY_WRITES_PER_SECOND)
    steady.start()
    run = LiveSync(
        options(source.uri(), target_uri, db_name, max_ops_per_second=0, stop_when="caught_up"), say=_quiet
    )
    started = time.perf_counter()
    figures = run.run()
    seconds = time.perf_counter() - started
    steady.stopping.set()
    steady.join()
    until = state(target_client[db_name])["stream"]["applied_through"]
    floor_db = target_client[f"{db_name}_floor"]
    floor = floor_replay(source_db, floor_db, token, until)
    target_client.drop_database(floor_db.name)
    sync_rate = figures.events_applied / seconds
    result = {
        "sync": {
            "events": figures.events_applied,
            "seconds": round(seconds, 3),
            "events_per_second": round(sync_rate, 1),
            "target_operations": figures.target_operations,
        },
        "floor": floor,
        "ratio": round(sync_rate / floor["events_per_second"], 3),
    }
    source_client.close()
    target_client.close()
    return result


def bench_lag(source, target_uri, db_name) -> dict:
    """Lag p95 with the source at 50 writes/s and the sync at its default pacing (80 ops/s)."""
    from pymongo import MongoClient

    from migration_tools.sync import LiveSync

    source_client = MongoClient(source.uri())
    run = LiveSync(options(source.uri(), target_uri, db_name), say=_quiet)
    thread = threading.Thread(target=run.run, daemon=True)
    thread.start()
    while getattr(run, "reader", None) is None or not getattr(run, "caught_up", False):
        time.sleep(0.1)
    steady = SteadyWriter(source_client[db_name], STEADY_WRITES_PER_SECOND, start_at=2 * 10**6)
    steady.start()
    samples = []
    end = time.monotonic() + LAG_SECONDS
    while time.monotonic() < end:
        samples.append(run.lag()[0])
        time.sleep(0.25)
    steady.stopping.set()
    steady.join()
    run.stop.set()
    thread.join(60)
    source_client.close()
    samples.sort()
    return {
        "writes_per_second": round(steady.writes / LAG_SECONDS, 1),
        "samples": len(samples),
        "p50_seconds": round(statistics.median(samples), 3),
        "p95_seconds": round(samples[int(0.95 * (len(samples) - 1))], 3),
        "max_seconds": round(samples[-1], 3),
    }


def bench_freeze(source, target_uri, db_name, documents: int) -> dict:
    """The freeze of --cutover (flag set to GO) after a copy of ``documents`` generated documents."""
    from pymongo import MongoClient

    from bench.data import generate
    from migration_tools.sync import LiveSync

    with MongoClient(source.uri()) as client:
        generated = generate(client, db_name, documents=documents)
    LiveSync(
        options(source.uri(), target_uri, db_name, max_ops_per_second=0, stop_when="verified"), say=_quiet
    ).run()
    figures = LiveSync(options(source.uri(), target_uri, db_name, cutover=True), say=_quiet).run()
    return {"documents": sum(generated.values()), **{k: v for k, v in figures.cutover.items() if k != "at"}}


def _quiet(line: str) -> None:
    return None


def _load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-documents", type=int, default=7000, help="The demo's size (default 7000).")
    args = parser.parse_args(argv)
    _setup_django()
    from bench.delay_proxy import DelayProxy
    from studymaster.embedded import EmbeddedMongo

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"sync-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    work = Path(tempfile.mkdtemp(prefix="sm-bench-sync-"))
    source = EmbeddedMongo(work / "source").start()
    target = EmbeddedMongo(work / "target").start()
    report: dict = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "delay_ms_each_way": DELAY_MS,
    }
    try:
        with DelayProxy(
            ("127.0.0.1", int(target.uri().rstrip("/").rsplit(":", 1)[1])), delay_ms=DELAY_MS
        ) as proxy:
            target_uri = proxy.mongodb_uri()
            report["load_before"] = _load()
            report["events"] = bench_events(source, target_uri, "bench_events")
            report["load_after_events"] = _load()
            _save(report, path)  # each part as it ends: a long run that fails later keeps them
            report["lag"] = bench_lag(source, target_uri, "bench_events")
            report["load_after_lag"] = _load()
            _save(report, path)
            report["freeze"] = []
            for size in (args.demo_documents, 10 * args.demo_documents):
                report["freeze"].append(bench_freeze(source, target_uri, f"bench_freeze_{size}", size))
                _save(report, path)
            report["load_after_freeze"] = _load()
    finally:
        source.close()
        target.close()
        shutil.rmtree(work, ignore_errors=True)
    report["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    report["targets"] = TARGETS
    _save(report, path)
    print(render(report))
    print(f"\nwritten: {path.relative_to(ROOT)}")
    return 0


def _save(report: dict, path: Path) -> None:
    path.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({key: report[key] for key in list(report)[-2:]}, default=str), flush=True)


def render(report: dict) -> str:
    events, lag = report["events"], report["lag"]
    ok = lambda good: "ok" if good else "MISS"  # noqa: E731
    lines = [
        f"sync_atlas, target {report['delay_ms_each_way']} ms away each way (bench/delay_proxy.py)",
        f"events/s: sync {events['sync']['events_per_second']} ({events['sync']['events']} events in "
        f"{events['sync']['seconds']} s, {events['sync']['target_operations']} target operations), floor "
        f"{events['floor']['events_per_second']} ({events['floor']['events']} events in {events['floor']['seconds']} s): "
        f"ratio {events['ratio']:.2f} (target >= {TARGETS['events_ratio']}, {ok(events['ratio'] >= TARGETS['events_ratio'])})",
        f"lag at {lag['writes_per_second']} writes/s, default pacing: p50 {lag['p50_seconds']} s, p95 "
        f"{lag['p95_seconds']} s, max {lag['max_seconds']} s over {lag['samples']} samples (target p95 < "
        f"{TARGETS['lag_p95_seconds']}, {ok(lag['p95_seconds'] < TARGETS['lag_p95_seconds'])})",
    ]
    for row in report["freeze"]:
        lines.append(
            f"cut-over at {row['documents']} documents: {row['result']}, freeze {row['freeze_seconds']} s "
            f"(target < {TARGETS['freeze_seconds']}, {ok(row['freeze_seconds'] < TARGETS['freeze_seconds'])})"
        )
    lines.append(
        f"load average (1, 5, 15 min): before {report['load_before']}, after events {report['load_after_events']}, "
        f"after lag {report['load_after_lag']}, after freeze {report['load_after_freeze']} (2 cores, shared)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
