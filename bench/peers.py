"""``make bench``'s second step: our commands against the real tools and the raw-driver floor.

One run, on the same generated data (bench/data.py, the application's collections), every
program a whole process timed from outside (bench/migration.py's launcher: wall time and its own
peak RSS): ``export_local`` against ``mongodump`` and ``import_atlas`` against ``mongorestore``
(their defaults), in each mode (directory, gzip, archive), and ``verify_migration``, each beside
the raw-driver floor (bench/floors.py), on loopback and with the far server 10 ms away each way
behind bench/delay_proxy.py: the source for an export, the target for an import and a verify
(its source stays local, as in a migration).

A ratio above 1 means we are faster: peer seconds / our seconds, floor seconds / our seconds.
Results: ``bench/results/peers-<time>.json``, and the table in docs/performance.md between the
``peers`` markers (not for a smoke run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from bench.delay_proxy import DelayProxy
from bench.migration import RESULTS, ROOT, bench_servers, best_of, measure, seed
from studymaster.embedded import EmbeddedMongo

MODES = ("directory", "gzip", "archive")
DOCS = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- peers:begin -->", "<!-- peers:end -->"
TOOLS_SCRIPT = ROOT.parent / "shared" / "tools" / "mongo-tools.sh"


def tools_folder() -> Path:
    """The real tools' folder (../shared/tools/mongo-tools.sh unpacks them once)."""
    found = subprocess.run(["bash", str(TOOLS_SCRIPT)], capture_output=True, text=True, check=True)
    return Path(found.stdout.strip())


def _port(uri: str) -> int:
    return int(uri.rsplit(":", 1)[1].split("/")[0])


def _ours(kind: str, mode: str, *, uri: str, db: str, path: Path, other_db: str = "") -> list[str]:
    manage = [sys.executable, "manage.py"]
    if kind == "export":
        where = ["--archive", str(path)] if mode == "archive" else ["--out", str(path)]
        return [
            *manage,
            "export_local",
            "--uri",
            uri,
            "--db",
            db,
            *where,
            *(["--gzip"] if mode == "gzip" else []),
        ]
    source = ["--archive", str(path)] if mode == "archive" else ["--from", str(path)]
    return [*manage, "import_atlas", *source, "--uri", uri, "--db", other_db, "--no-snapshot"]


def _peer(
    tools: Path, kind: str, mode: str, *, uri: str, db: str, path: Path, other_db: str = ""
) -> list[str]:
    where = (
        f"--archive={path}"
        if mode == "archive"
        else (f"--out={path}" if kind == "export" else f"--dir={path}")
    )
    gzip = ["--gzip"] if mode == "gzip" else []
    if kind == "export":
        return [str(tools / "mongodump"), f"--uri={uri}", f"--db={db}", where, *gzip, "--quiet"]
    renamed = [f"--nsFrom={db}.*", f"--nsTo={other_db}.*"]
    return [str(tools / "mongorestore"), f"--uri={uri}", *renamed, where, *gzip, "--quiet"]


def _floor(kind: str, *, source: str, target: str, db: str, other_db: str, path: Path) -> list[str]:
    floors = [sys.executable, "-m", "bench.floors"]
    if kind == "export":
        return [*floors, "export", source, db, str(path)]
    if kind == "import":
        return [*floors, "import", target, other_db, str(path)]
    return [*floors, "verify", source, db, target, other_db]


def run_distance(
    label: str, *, source: EmbeddedMongo, target: EmbeddedMongo, source_uri: str, target_uri: str,
    db: str, work: Path, env: dict, tools: Path, repeat: int, modes: tuple[str, ...],
) -> dict:  # fmt: skip
    """Every measurement at one distance; ``*_uri`` reach the servers (maybe through a proxy).

    Every import, ours, the peer's and the floor's, runs into a fresh target server (stopped,
    its storage removed, started again on the same port, so a proxy in front still reaches
    it): a target that has held and dropped earlier copies stalls in WiredTiger for tens of
    seconds at random, for both tools alike (docs/performance.md), which one run cannot tell
    from the tool. Verify reads our copy of the first mode, imported untimed at the end."""
    rows: dict = {}

    def fresh() -> None:
        target.stop()
        shutil.rmtree(target.storage, ignore_errors=True)
        target.start()

    def timed(key: tuple[str, str, str], command: list[str], before=None) -> None:
        runs = []
        for _ in range(repeat):
            if before is not None:
                before()
            runs.append(measure(command, env))
        rows.setdefault(key[0], {}).setdefault(key[1], {})[key[2]] = best_of(runs)

    copy = f"ours_{label}_{modes[0]}"
    kept = None  # our dump of the first mode, which verify's copy is imported from
    for mode in modes:
        suffix = ".archive" if mode == "archive" else ""
        ours, theirs = work / f"{label}-ours-{mode}{suffix}", work / f"{label}-theirs-{mode}{suffix}"
        ours_db, theirs_db = f"ours_{label}_{mode}", f"theirs_{label}_{mode}"
        timed(
            ("export", mode, "ours"),
            _ours("export", mode, uri=source_uri, db=db, path=ours),
            lambda p=ours: _remove(p),
        )
        timed(
            ("export", mode, "peer"),
            _peer(tools, "export", mode, uri=source_uri, db=db, path=theirs),
            lambda p=theirs: _remove(p),
        )
        command = _ours("import", mode, uri=target_uri, db=db, path=ours, other_db=ours_db)
        timed(("import", mode, "ours"), command, fresh)
        command = _peer(tools, "import", mode, uri=target_uri, db=db, path=theirs, other_db=theirs_db)
        timed(("import", mode, "peer"), command, fresh)
        _remove(theirs)
        if mode == modes[0]:
            kept = (mode, ours)
        else:
            _remove(ours)
    # The floors, and verify: our copy (the first mode's) against the source, local as in a migration.
    floor_dump, floor_db = work / f"{label}-floor", f"floor_{label}"
    floor = {"source": source_uri, "target": target_uri, "db": db, "other_db": floor_db, "path": floor_dump}
    timed(("export", "floor", "floor"), _floor("export", **floor), lambda: _remove(floor_dump))
    timed(("import", "floor", "floor"), _floor("import", **floor), fresh)
    _remove(floor_dump)
    fresh()
    mode, path = kept
    measure(_ours("import", mode, uri=target_uri, db=db, path=path, other_db=copy), env)
    _remove(path)
    timed(
        ("verify", "floor", "floor"), _floor("verify", **{**floor, "source": source.uri(), "other_db": copy})
    )
    verify = [
        sys.executable, "manage.py", "verify_migration", "--source-uri", source.uri(), "--db", db,
        "--target-uri", target_uri, "--target-db", copy,
    ]  # fmt: skip
    timed(("verify", "live", "ours"), verify)
    fresh()
    return rows


def _remove(path: Path) -> None:
    """A dump folder or an archive and its manifest, before a run writes them again."""
    if path.is_dir():
        shutil.rmtree(path)
    for stale in (path, path.with_name(path.name + ".manifest.json")):
        stale.unlink(missing_ok=True)


def ratios(rows: dict) -> dict:
    """peer / ours and floor / ours, per kind and mode (higher: we are faster)."""
    out: dict = {}
    for kind, modes in rows.items():
        floor = modes.get("floor", {}).get("floor", {}).get("seconds")
        for mode, programs in modes.items():
            if mode == "floor" or "ours" not in programs:
                continue
            ours = programs["ours"]["seconds"]
            entry = {"floor_over_ours": round(floor / ours, 3) if floor else None}
            if "peer" in programs:
                entry["peer_over_ours"] = round(programs["peer"]["seconds"] / ours, 3)
            out.setdefault(kind, {})[mode] = entry
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--documents", type=int, default=100_000, help="Documents to generate (default 100000)."
    )
    parser.add_argument(
        "--delay-ms", type=float, default=10.0, help="The far distance, each way (default 10)."
    )
    parser.add_argument("--repeat", type=int, default=1, help="Runs of each measurement; the fastest counts.")
    parser.add_argument(
        "--smoke", action="store_true", help="2,000 documents, 2 ms, archive mode only: seconds."
    )
    args = parser.parse_args(argv)
    documents, delay, modes = (
        (2000, 2.0, ("archive",)) if args.smoke else (args.documents, args.delay_ms, MODES)
    )
    tools = tools_folder()
    db = "peers"
    with bench_servers("sm-peers-") as (work, source, target, env):
        counts = seed(source, db, documents, env)
        common = {"source": source, "target": target, "db": db, "work": work, "env": env, "tools": tools}
        distances = {
            "loopback": run_distance(
                "loopback",
                source_uri=source.uri(),
                target_uri=target.uri(),
                repeat=args.repeat,
                modes=modes,
                **common,
            )
        }
        with (
            DelayProxy(("127.0.0.1", _port(source.uri())), delay_ms=delay) as far_source,
            DelayProxy(("127.0.0.1", _port(target.uri())), delay_ms=delay) as far_target,
        ):
            distances[f"{delay:g} ms"] = run_distance(
                "far", source_uri=far_source.mongodb_uri(), target_uri=far_target.mongodb_uri(),
                repeat=args.repeat, modes=modes, **common,
            )  # fmt: skip
    report = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
        "smoke": args.smoke,
        "documents": sum(counts.values()),
        "collections": counts,
        "delay_ms_each_way": delay,
        "distances": distances,
        "ratios": {label: ratios(rows) for label, rows in distances.items()},
    }
    table = render(report)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"peers-{'smoke-' if args.smoke else ''}{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\nwritten: {path.relative_to(ROOT)}")
    if not args.smoke and write_docs(table, report):
        print(f"updated: {DOCS.relative_to(ROOT)}")
    return 0


def render(report: dict) -> str:
    """The Markdown table: seconds (peak MB) of ours, the floor and the peer, and the two ratios."""
    lines = [
        "| distance | step | mode | ours s (MB) | floor s | peer s (MB) | peer / ours | floor / ours |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for label, rows in report["distances"].items():
        for kind, modes in rows.items():
            floor = modes.get("floor", {}).get("floor")
            for mode, programs in modes.items():
                if mode == "floor":
                    continue
                ours, peer = programs["ours"], programs.get("peer")
                ratio = report["ratios"][label][kind][mode]
                lines.append(
                    f"| {label} | {kind} | {mode} | {ours['seconds']:.2f} ({ours['peak_rss_mb']:.0f}) | "
                    f"{floor['seconds']:.2f} | "
                    + (
                        f"{peer['seconds']:.2f} ({peer['peak_rss_mb']:.0f}) | **{ratio['peer_over_ours']:.2f}** | "
                        if peer
                        else "– | – | "
                    )
                    + f"{ratio['floor_over_ours']:.2f} |"
                )
    return "\n".join(lines)


def write_docs(table: str, report: dict) -> bool:
    """Replace the text between the peers markers of docs/performance.md with this run's table;
    False when the markers are not there."""
    text = DOCS.read_text()
    if BEGIN not in text or END not in text:
        return False
    load = ", ".join(f"{value:.2f}" for value in report["machine"]["load"])
    block = (
        f"{BEGIN}\n{report['documents']:,} documents in {len(report['collections'])} collections, "
        f"{report['delay_ms_each_way']:g} ms each way for the far server; run {report['when']} "
        f"(load average at the end {load}).\n\n{table}\n{END}"
    )
    head, rest = text.split(BEGIN, 1)
    DOCS.write_text(head + block + rest.split(END, 1)[1])
    return True


if __name__ == "__main__":
    sys.exit(main())
