"""gunicorn settings, loaded through the root ``gunicorn.conf.py`` (see docs/deployment.md).

Workers × MONGODB_MAX_POOL_SIZE × instances must stay well under the cluster's connection
limit (M0: 500). For Prometheus metrics with several workers, set ``PROMETHEUS_MULTIPROC_DIR``
to a directory only this service writes (docs/operations.md): each worker writes its metric
values there and ``/metrics`` in any worker adds them up. Without it the hooks do nothing.
"""

import os
from pathlib import Path

from prometheus_client import multiprocess

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:" + os.environ.get("PORT", "8000"))  # noqa: S104 - behind the platform's proxy
# One worker: every request then waits in one queue. A gthread worker keeps each keep-alive
# connection to itself, so with two the clients split unevenly and those of the busier worker
# wait longer (docs/deployment.md: p95 0.74x with one, at 0.92x the requests/s, on 2 cores).
# Add a worker when one nears a core of CPU.
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
# Threads (the gthread worker): a request spends most of its time waiting on MongoDB, so one
# process serves several at once; 8 stays under the pool's 10 connections, so no thread waits
# for a connection.
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = 30
graceful_timeout = 20
accesslog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):
    """Start from an empty directory: files of a previous run would be counted again."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        for stale in Path(directory).glob("*.db"):
            stale.unlink()


def child_exit(server, worker):
    """Drop a dead worker's live gauges (open connections) from the sums."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
