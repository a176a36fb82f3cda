"""``make bench``: export_local, import_atlas and verify_migration against the raw-driver floor.

One run, on the embedded server, on generated data shaped like ours (bench/data.py), at each
size. Every command and every floor runs as its own process; we record its wall time and its
peak RSS (``os.wait4``). The ratio is floor time / command time: 1.0 means as fast as the raw
driver. Results are printed and written to ``bench/results/migration-<time>.json``.

One more step, ``restore``, pits a restore with ``--drop --yes`` against a first import of the
same dump into a durable target (``--sync-on-commit``, as the demo's Atlas stand-in and any
server whose data must survive a crash): the first import into an empty database, then, after a
bad second import changed 1 % of the documents and added 1 %, the restore of the same dump over
it. ratio = first import seconds / restore seconds (1.0: the restore takes as long as the first
import).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.data import generate
from studymaster.embedded import EmbeddedMongo
from studymaster.tools_collections import is_data_collection

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGETS = {"export": 0.8, "import": 0.7, "verify": 0.6}
# A restore over the data it restores should cost no more than importing it afresh.
RESTORE_TARGET = 1.0
RSS_GROWTH_TARGET = 1.2


# The child is started by this tiny launcher, not by the bench process itself: on Linux a process's
# peak RSS (ru_maxrss) survives exec and starts at the RSS of the process it was forked from, so a
# child forked straight from the bench (which holds the generated data) would report the bench's
# size, not its own. The launcher is ~8 MB, below any Python that imports pymongo.
LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - started, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def measure(command: list[str], env: dict) -> dict:
    """Run ``command`` as a child process; return its seconds and its own peak RSS (MB)."""
    result = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *command], cwd=ROOT, env=env, capture_output=True, text=True
    )
    seconds, max_rss_kb, code = result.stdout.split()
    if int(code) != 0:
        raise RuntimeError(f"{' '.join(command[:4])} … exited {code}:\n{result.stderr[-2000:]}")
    return {"seconds": round(float(seconds), 3), "peak_rss_mb": round(int(max_rss_kb) / 1024, 1)}


def measure_startup(env: dict, repeat: int) -> dict:
    """The fixed cost before any work: Django's set-up for a command, pymongo's import for a floor.

    Reported, and taken off both sides for a second ratio, so that the cost of our code paths can
    be told apart from the interpreter's start-up (django_mongodb_backend alone imports GeoDjango).
    """
    manage = [sys.executable, "manage.py", "export_local", "--help"]
    floor = [sys.executable, "-c", "import pymongo, bson.raw_bson"]
    return {
        "command_seconds": min(measure(manage, env)["seconds"] for _ in range(max(repeat, 2))),
        "floor_seconds": min(measure(floor, env)["seconds"] for _ in range(max(repeat, 2))),
    }


@contextlib.contextmanager
def bench_servers(prefix: str):
    """(work folder, source, target, environment for manage.py): two embedded servers, each its
    own process, the application's database migrated on the source; all removed afterwards."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    source = EmbeddedMongo(work / "source").start()
    target = EmbeddedMongo(work / "target").start()
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="studymaster.settings.dev",
        MONGODB_URI=source.uri(),
        MONGODB_DB_NAME="bench_app",
        PYTHONPATH=str(ROOT),
    )
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        yield work, source, target, env
    finally:
        source.close()
        target.close()
        shutil.rmtree(work, ignore_errors=True)


def seed(source: EmbeddedMongo, db: str, documents: int, env: dict) -> dict[str, int]:
    """A fresh ``db`` on ``source``: the application's collections and indexes (its migrations),
    then about ``documents`` generated documents; returns the documents per collection."""
    with source.client() as client:
        client.drop_database(db)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"],
            cwd=ROOT,
            env={**env, "MONGODB_DB_NAME": db},
            check=True,
        )
        generate(client, db, documents=documents)
        # The generator writes sessions and ledger as the app stores them; the maintained totals
        # come from the app's own rebuild, so verify's "totals equal the history" holds.
        subprocess.run(
            [sys.executable, "manage.py", "recompute_totals", "--fix", "-v", "0"],
            cwd=ROOT,
            env={**env, "MONGODB_DB_NAME": db},
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return {
            name: client[db][name].estimated_document_count() for name in client[db].list_collection_names()
        }


def best_of(runs: list[dict]) -> dict:
    return {"seconds": min(r["seconds"] for r in runs), "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def bench_size(
    size: int, source: EmbeddedMongo, target: EmbeddedMongo, work: Path, env: dict, repeat: int
) -> dict:
    python = sys.executable
    manage = [python, "manage.py"]
    db = f"bench_{size}"
    counts = seed(source, db, size, env)
    floor_dump, cmd_dump = work / f"floor_{size}", work / f"cmd_{size}"
    runs: dict[str, dict[str, list]] = {kind: {"floor": [], "command": []} for kind in TARGETS}

    def fresh_target(name: str) -> None:
        with target.client() as client:
            client.drop_database(name)

    for _ in range(repeat):
        for path in (floor_dump, cmd_dump):
            shutil.rmtree(path, ignore_errors=True)
        runs["export"]["floor"].append(
            measure([python, "-m", "bench.floors", "export", source.uri(), db, str(floor_dump)], env)
        )
        runs["export"]["command"].append(
            measure([*manage, "export_local", "--uri", source.uri(), "--db", db, "--out", str(cmd_dump)], env)
        )
        fresh_target(f"floor_{size}")
        runs["import"]["floor"].append(
            measure(
                [python, "-m", "bench.floors", "import", target.uri(), f"floor_{size}", str(floor_dump)], env
            )
        )
        fresh_target(f"cmd_{size}")
        runs["import"]["command"].append(
            measure(
                [
                    *manage,
                    "import_atlas",
                    "--from",
                    str(cmd_dump),
                    "--uri",
                    target.uri(),
                    "--db",
                    f"cmd_{size}",
                    "--no-snapshot",
                ],
                env,
            )
        )
        runs["verify"]["floor"].append(
            measure(
                [python, "-m", "bench.floors", "verify", source.uri(), db, target.uri(), f"cmd_{size}"], env
            )
        )
        runs["verify"]["command"].append(
            measure(
                [
                    *manage,
                    "verify_migration",
                    "--source-uri",
                    source.uri(),
                    "--target-uri",
                    target.uri(),
                    "--db",
                    db,
                    "--target-db",
                    f"cmd_{size}",
                ],
                env,
            )
        )
    result = {"documents": sum(counts.values()), "collections": counts}
    result["restore"] = bench_restore(cmd_dump, work, env, repeat)
    for kind, pair in runs.items():
        floor, command = best_of(pair["floor"]), best_of(pair["command"])
        result[kind] = {
            "floor": floor,
            "command": command,
            "ratio": round(floor["seconds"] / command["seconds"], 3),
        }
    return result


def bench_restore(dump: Path, work: Path, env: dict, repeat: int) -> dict:
    """A first import of ``dump`` into a durable target, then a restore with --drop --yes over a
    changed copy; the fastest of ``repeat`` runs of each."""
    manage = [sys.executable, "manage.py"]
    target = EmbeddedMongo(work / f"durable-{dump.name}", durable=True).start()
    runs: dict[str, list] = {"first_import": [], "restore": []}
    try:
        for attempt in range(repeat):
            db = f"restore_{attempt}"
            command = [*manage, "import_atlas", "--from", str(dump), "--uri", target.uri(), "--db", db]
            runs["first_import"].append(measure([*command, "--no-snapshot"], env))
            with target.client() as client:
                _bad_second_import(client[db])
            runs["restore"].append(measure([*command, "--drop", "--yes", "--no-snapshot"], env))
    finally:
        target.close()
    first, restore = best_of(runs["first_import"]), best_of(runs["restore"])
    return {
        "first_import": first,
        "restore": restore,
        "ratio": round(first["seconds"] / restore["seconds"], 3),
    }


def _bad_second_import(db) -> None:
    """Change 1 % of each collection's documents and add as many: what a restore has to undo."""
    for name in filter(is_data_collection, db.list_collection_names()):
        ids = [doc["_id"] for doc in db[name].find({}, {"_id": 1})][::100]
        if ids:
            db[name].update_many({"_id": {"$in": ids}}, {"$set": {"bench_changed": True}})
            db[name].insert_many([{"bench_added": n} for n in range(len(ids))])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,50000,100000", help="Document counts, comma-separated.")
    parser.add_argument("--repeat", type=int, default=2, help="Runs of each measurement; the fastest counts.")
    parser.add_argument("--smoke", action="store_true", help="A few thousand documents, one run: seconds.")
    args = parser.parse_args(argv)
    sizes = [2000, 4000] if args.smoke else [int(s) for s in args.sizes.split(",")]
    repeat = 1 if args.smoke else args.repeat
    with bench_servers("sm-bench-") as (work, source, target, env):
        startup = measure_startup(env, repeat)
        results = {size: bench_size(size, source, target, work, env, repeat) for size in sizes}
    for result in results.values():
        for kind in TARGETS:
            row = result[kind]
            floor_net = row["floor"]["seconds"] - startup["floor_seconds"]
            command_net = row["command"]["seconds"] - startup["command_seconds"]
            row["ratio_without_startup"] = round(floor_net / max(command_net, 1e-3), 3)
    report = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "smoke": args.smoke,
        "startup": startup,
        "sizes": results,
        "targets": {**TARGETS, "rss_growth": RSS_GROWTH_TARGET, "restore": RESTORE_TARGET},
    }
    small, large = results[sizes[0]], results[sizes[-1]]
    report["rss_growth"] = {
        kind: round(large[kind]["command"]["peak_rss_mb"] / small[kind]["command"]["peak_rss_mb"], 3)
        for kind in TARGETS
    }
    print(render(report))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"migration-{'smoke-' if args.smoke else ''}{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\nwritten: {path.relative_to(ROOT)}")
    return 0


def render(report: dict) -> str:
    lines = [
        f"{'size':>8} {'step':<7} {'floor s':>8} {'cmd s':>8} {'ratio':>6} {'target':>6} {'floor MB':>9} "
        f"{'cmd MB':>7} {'net ratio':>9}"
    ]
    for size, result in report["sizes"].items():
        for kind in TARGETS:
            row = result[kind]
            mark = "ok" if row["ratio"] >= TARGETS[kind] else "MISS"
            lines.append(
                f"{size:>8} {kind:<7} {row['floor']['seconds']:>8.2f} {row['command']['seconds']:>8.2f} "
                f"{row['ratio']:>6.2f} {TARGETS[kind]:>5.1f}{'' if mark == 'ok' else '!'} "
                f"{row['floor']['peak_rss_mb']:>9.1f} {row['command']['peak_rss_mb']:>7.1f} "
                f"{row['ratio_without_startup']:>9.2f}"
            )
    for size, result in report["sizes"].items():
        restore = result["restore"]
        mark = "ok" if restore["ratio"] >= RESTORE_TARGET else "MISS"
        lines.append(
            f"{size:>8} restore: first import {restore['first_import']['seconds']:.2f} s, restore with "
            f"--drop --yes over 1 % changed + 1 % added {restore['restore']['seconds']:.2f} s: ratio "
            f"{restore['ratio']:.2f} (target >= {RESTORE_TARGET}, {mark}; durable target)"
        )
    growth = ", ".join(f"{kind} {value:.2f}x" for kind, value in report["rss_growth"].items())
    lines.append(f"peak RSS, largest size / smallest size: {growth} (target <= {RSS_GROWTH_TARGET})")
    startup = report["startup"]
    lines.append(
        f"start-up: a command {startup['command_seconds']:.2f} s (manage.py … --help), a floor "
        f"{startup['floor_seconds']:.2f} s (import pymongo); net ratio = ratio with both taken off"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
