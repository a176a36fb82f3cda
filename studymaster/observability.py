"""Metrics and recent statistics of the application's MongoDB traffic and HTTP requests.

Two audiences read the same events:
- Prometheus, through the metrics defined here, which ``/metrics`` serves
  (``operations.views.metrics_view``). With several gunicorn workers, set
  ``PROMETHEUS_MULTIPROC_DIR`` (see docs/operations.md): each worker then writes its values to
  files there and ``/metrics`` aggregates them.
- The health detail (``/api/health/``, ``operations.health``), through :data:`command_stats`
  and :data:`pool_stats`, which keep this process's recent command latencies and its pool's
  state in memory.

The listeners are process-wide singletons; :func:`mongo_event_listeners` hands them to the
MongoClient that Django builds (``DATABASES["default"]["OPTIONS"]["event_listeners"]``).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from http import HTTPStatus

from prometheus_client import Counter, Gauge, Histogram
from pymongo import monitoring

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUEST_SECONDS = Histogram(
    "studymaster_http_request_duration_seconds",
    "HTTP request latency by route (the URL pattern, not the raw path), method and status.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
MONGO_COMMAND_SECONDS = Histogram(
    "studymaster_mongodb_command_duration_seconds",
    "MongoDB command latency by command name and outcome (ok, error, network).",
    ["command", "outcome"],
    buckets=LATENCY_BUCKETS,
)
MONGO_POOL_CHECKOUTS = Counter(
    "studymaster_mongodb_pool_checkouts",
    "Connections checked out of the MongoDB pool.",
)
MONGO_POOL_CHECKOUT_WAIT_SECONDS = Histogram(
    "studymaster_mongodb_pool_checkout_wait_seconds",
    "Time spent waiting for a pooled MongoDB connection.",
    buckets=LATENCY_BUCKETS,
)
MONGO_POOL_CHECKOUT_FAILURES = Counter(
    "studymaster_mongodb_pool_checkout_failures",
    "Failed checkouts from the MongoDB pool, by reason (timeout = pool exhausted).",
    ["reason"],
)
MONGO_POOL_CONNECTIONS = Gauge(
    "studymaster_mongodb_pool_connections",
    "Open MongoDB connections of live processes.",
    multiprocess_mode="livesum",
)
MONGO_RETRIES = Counter(
    "studymaster_mongodb_retries",
    "Retries of database operations by our retry helper (on top of the driver's own), by operation.",
    ["operation"],
)

RECENT_COMMANDS = 500  # per command name, for p50/p95
OPS_WINDOW_SECONDS = 60.0


class CommandStats:
    """This process's recent command latencies (per command) and operations per second."""

    def __init__(self, *, recent: int = RECENT_COMMANDS, window_seconds: float = OPS_WINDOW_SECONDS):
        self._lock = threading.Lock()
        self._latencies: dict[str, deque] = defaultdict(lambda: deque(maxlen=recent))
        self._finished: deque = deque()
        self.window_seconds = window_seconds

    def record(self, command: str, seconds: float) -> None:
        now = time.monotonic()
        with self._lock:
            self._latencies[command].append(seconds)
            self._finished.append(now)
            self._expire(now)

    def _expire(self, now: float) -> None:
        while self._finished and self._finished[0] < now - self.window_seconds:
            self._finished.popleft()

    def latencies(self) -> dict[str, dict]:
        """``{command: {count, p50_ms, p95_ms}}`` over the last RECENT_COMMANDS of each command."""
        with self._lock:
            snapshot = {name: sorted(values) for name, values in self._latencies.items() if values}
        return {
            name: {
                "count": len(values),
                "p50_ms": round(_percentile(values, 50) * 1000, 2),
                "p95_ms": round(_percentile(values, 95) * 1000, 2),
            }
            for name, values in sorted(snapshot.items())
        }

    def operations_per_second(self) -> float:
        with self._lock:
            self._expire(time.monotonic())
            return round(len(self._finished) / self.window_seconds, 2)

    def reset(self) -> None:
        with self._lock:
            self._latencies.clear()
            self._finished.clear()


def _percentile(sorted_values: list[float], percent: int) -> float:
    """Nearest-rank percentile of a non-empty sorted list."""
    rank = max(1, -(-percent * len(sorted_values) // 100))
    return sorted_values[rank - 1]


class PoolStats:
    """The state of this process's MongoDB connection pools, summed over servers."""

    def __init__(self):
        self._lock = threading.Lock()
        self.open = 0
        self.in_use = 0
        self.waiting = 0
        self.checkouts = 0
        self.checkout_failures = 0
        self.max_pool_size: int | None = None

    def change(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, max(0, getattr(self, name) + delta))

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "open": self.open,
                "in_use": self.in_use,
                "waiting": self.waiting,
                "checkouts": self.checkouts,
                "checkout_failures": self.checkout_failures,
                "max_pool_size": self.max_pool_size,
            }


command_stats = CommandStats()
pool_stats = PoolStats()


class CommandMetricsListener(monitoring.CommandListener):
    """Times every command into the Prometheus histogram and :data:`command_stats`."""

    def started(self, event):
        pass

    def succeeded(self, event):
        self._record(event, "ok")

    def failed(self, event):
        failure = event.failure if isinstance(event.failure, dict) else {}
        # PyMongo reports a network failure as {"errmsg", "errtype"}; a server reply has a code.
        self._record(event, "network" if "errtype" in failure else "error")

    def _record(self, event, outcome: str) -> None:
        seconds = event.duration_micros / 1_000_000
        MONGO_COMMAND_SECONDS.labels(command=event.command_name, outcome=outcome).observe(seconds)
        command_stats.record(event.command_name, seconds)


class PoolMetricsListener(monitoring.ConnectionPoolListener):
    """Keeps :data:`pool_stats` and the pool metrics."""

    def pool_created(self, event):
        max_pool_size = (event.options or {}).get("maxPoolSize")
        if max_pool_size is not None:
            pool_stats.max_pool_size = max_pool_size

    def pool_ready(self, event):
        pass

    def pool_cleared(self, event):
        pass

    def pool_closed(self, event):
        pass

    def connection_created(self, event):
        pool_stats.change(open=1)
        MONGO_POOL_CONNECTIONS.inc()

    def connection_ready(self, event):
        pass

    def connection_closed(self, event):
        pool_stats.change(open=-1)
        MONGO_POOL_CONNECTIONS.dec()

    def connection_check_out_started(self, event):
        pool_stats.change(waiting=1)

    def connection_check_out_failed(self, event):
        pool_stats.change(waiting=-1, checkout_failures=1)
        MONGO_POOL_CHECKOUT_FAILURES.labels(reason=str(event.reason)).inc()

    def connection_checked_out(self, event):
        pool_stats.change(waiting=-1, in_use=1, checkouts=1)
        MONGO_POOL_CHECKOUTS.inc()
        MONGO_POOL_CHECKOUT_WAIT_SECONDS.observe(getattr(event, "duration", 0.0) or 0.0)

    def connection_checked_in(self, event):
        pool_stats.change(in_use=-1)


_LISTENERS = (CommandMetricsListener(), PoolMetricsListener())


def mongo_event_listeners() -> list:
    """The listeners to pass as ``event_listeners`` to the application's MongoClient."""
    return list(_LISTENERS)


# Label values come from fixed sets, whatever a client sends: every made-up method, path and
# status would otherwise be a new series in every worker, for ever.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
HTTP_STATUSES = frozenset(int(code) for code in HTTPStatus)


def http_labels(request, response) -> dict[str, str]:
    """``route`` (the URL pattern, or ``unmatched``), ``method`` (a standard one, or ``OTHER``) and
    ``status`` (a registered HTTP status; any other becomes its class, ``500`` for nonsense)."""
    match = getattr(request, "resolver_match", None)
    method = request.method if request.method in HTTP_METHODS else "OTHER"
    status = response.status_code
    if status not in HTTP_STATUSES:
        status = status // 100 * 100 if 100 <= status < 600 else 500
    return {
        "route": (match.route or match.view_name) if match else "unmatched",
        "method": method,
        "status": str(status),
    }


class RequestMetricsMiddleware:
    """Times each request, labelled by its URL pattern (``api/sessions/<str:pk>/``), not its path."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        HTTP_REQUEST_SECONDS.labels(**http_labels(request, response)).observe(time.perf_counter() - started)
        return response
