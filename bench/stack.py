"""What the API benches share: an embedded server, the production settings, gunicorn, /metrics.

``ApiStack`` starts SecantusDB (``studymaster.embedded``) in a directory of its own, migrates a
database on it, starts gunicorn with the production settings and ``gunicorn.conf.py`` (workers
and threads as given, else the file's), and stops everything on exit. ``django(code)`` runs
Python in a process with the same settings, to build the data a bench needs through the services.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from studymaster.embedded import EmbeddedMongo, free_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
POOL_SIZE = 10
# A simulated learner logs sessions, and 50 users log in from one address, faster than the
# production throttles allow a person to: the benches raise them and say so in their output.
THROTTLE_NOTE = (
    "THROTTLE_RATE_LOGIN, THROTTLE_RATE_REGISTER and THROTTLE_RATE_STUDY_SESSION were set "
    "to 100000/min for this run"
)


class ApiStack:
    """The API under gunicorn on an embedded server, with a database of its own (a context manager)."""

    def __init__(self, *, database: str = "bench", workers: int | None = None, threads: int | None = None):
        self.database = database
        self.workers, self.threads = workers, threads
        self.work = Path(tempfile.mkdtemp(prefix="sm-bench-"))
        self.metrics_dir = self.work / "metrics"
        self.metrics_dir.mkdir()
        self.metrics_token = secrets.token_urlsafe(24)
        self.port = free_port()
        self.server: EmbeddedMongo | None = None
        self.gunicorn: subprocess.Popen | None = None
        self.env: dict = {}

    def __enter__(self) -> ApiStack:
        self.server = EmbeddedMongo(self.work / "db").start()
        self.env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="studymaster.settings.prod",
            SECRET_KEY=secrets.token_urlsafe(64),
            MONGODB_URI=self.server.uri(),
            MONGODB_DB_NAME=self.database,
            MONGODB_MAX_POOL_SIZE=str(POOL_SIZE),
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SECURE_SSL_REDIRECT="0",
            METRICS_TOKEN=self.metrics_token,
            PROMETHEUS_MULTIPROC_DIR=str(self.metrics_dir),
            THROTTLE_RATE_LOGIN="100000/min",
            THROTTLE_RATE_REGISTER="100000/min",
            THROTTLE_RATE_STUDY_SESSION="100000/min",
            LOG_LEVEL="WARNING",
        )
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=self.env, check=True
        )
        return self

    def serve(self) -> None:
        """Start gunicorn and wait until it answers."""
        command = [sys.executable, "-m", "gunicorn", "studymaster.wsgi", "-c", str(ROOT / "gunicorn.conf.py")]
        command += ["-b", f"127.0.0.1:{self.port}", "--access-logfile", "/dev/null"]
        if self.workers:
            command += ["-w", str(self.workers)]
        if self.threads:
            command += ["--threads", str(self.threads)]
        self.gunicorn = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/health/live/", timeout=2)  # noqa: S310
                return
            except OSError:
                if self.gunicorn.poll() is not None:
                    raise RuntimeError("gunicorn exited at start-up") from None
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer within 60 s")

    def django(self, code: str, **env: str) -> str:
        """Run ``code`` after ``django.setup()`` with the stack's settings; return what it printed."""
        result = subprocess.run(
            [sys.executable, "-c", "import django; django.setup()\n" + code],
            cwd=ROOT,
            env={**self.env, **env},
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout

    def metrics(self) -> dict[str, float]:
        """Our /metrics, each metric summed over its labels and the workers."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/metrics", headers={"Authorization": f"Bearer {self.metrics_token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
            text = response.read().decode()
        totals: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name_labels, _, value = line.rpartition(" ")
            name = re.split(r"[{ ]", name_labels, maxsplit=1)[0]
            totals[name] = totals.get(name, 0.0) + float(value)
        return totals

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) used so far by the server, the gunicorn workers (summed) and
        this process (the simulated users): where the machine's cores go during a step."""
        workers = _children(self.gunicorn.pid) if self.gunicorn else []
        own = os.times()
        return {
            "server": _cpu_of(self.server.process.pid) if self.server and self.server.process else 0.0,
            "workers": sum(_cpu_of(pid) for pid in workers),
            "load_generator": own.user + own.system,
        }

    def __exit__(self, *exc) -> None:
        if self.gunicorn and self.gunicorn.poll() is None:
            self.gunicorn.send_signal(signal.SIGTERM)
            try:
                self.gunicorn.wait(30)
            except subprocess.TimeoutExpired:
                self.gunicorn.kill()
        if self.server:
            self.server.close()
        shutil.rmtree(self.work, ignore_errors=True)


OPS_METRIC = "studymaster_mongodb_command_duration_seconds_count"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) of a live process, from /proc; 0 once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def _children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (gunicorn's workers)."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def delta(before: dict[str, float], after: dict[str, float], name: str) -> float:
    """How much a metric, summed over its labels and the workers, grew in between."""
    return after.get(name, 0.0) - before.get(name, 0.0)


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile of ``values`` (``share`` from 0 to 1)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, round(share * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def load_average() -> str:
    """``uptime``'s load averages: how busy the machine was."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def report_header(*, smoke: bool, load_before: str) -> dict:
    """What every bench report starts with: when, on what machine, how busy it was."""
    return {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "smoke": smoke,
        "throttle_note": THROTTLE_NOTE,
    }


def write_report(kind: str, report: dict, text: str) -> Path:
    """Print ``text`` and write ``report`` to bench/results/<kind>-[smoke-]<time>.json."""
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{kind}-{'smoke-' if report['smoke'] else ''}{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\nwritten: {path.relative_to(ROOT)}")
    return path


class Client:
    """One keep-alive HTTP connection to the stack, as one simulated user (not thread-safe)."""

    def __init__(self, port: int, token: str | None = None):
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes, float]:
        """Send one request; (status, body, seconds). A dropped connection is reopened once."""
        payload = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):
            started = time.perf_counter()
            try:
                self._connection.request(method, path, body=payload, headers=self.headers)
                response = self._connection.getresponse()
                data = response.read()
                return response.status, data, time.perf_counter() - started
            except (http.client.HTTPException, ConnectionError):
                self._connection.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._connection.close()


def mint_tokens(stack: ApiStack, usernames: list[str]) -> dict[str, str]:
    """Access tokens for existing users, minted as login would (no password hashing per user)."""
    code = (
        "import json, os\n"
        "from rest_framework_simplejwt.tokens import AccessToken\n"
        "from accounts.models import User\n"
        "names = json.loads(os.environ['BENCH_USERS'])\n"
        "print(json.dumps({u.username: str(AccessToken.for_user(u)) for u in User.objects.filter(username__in=names)}))\n"
    )
    return json.loads(stack.django(code, BENCH_USERS=json.dumps(usernames)).strip().splitlines()[-1])


def create_users(stack: ApiStack, usernames: list[str], *, time_zone: str = "UTC") -> None:
    """Learners with these usernames, created in bulk (they log in by minted tokens)."""
    code = (
        "import json, os\n"
        "from accounts.models import User\n"
        "from accounts.usernames import username_fields\n"
        "names = json.loads(os.environ['BENCH_USERS'])\n"
        "User.objects.bulk_create([User(username=n, **username_fields(n), email=f'{n}@example.com', "
        "time_zone=os.environ['BENCH_TZ']) for n in names])\n"
    )
    stack.django(code, BENCH_USERS=json.dumps(usernames), BENCH_TZ=time_zone)
