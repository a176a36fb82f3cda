"""Gunicorn settings for Prometheus metrics with several workers.

Use: ``gunicorn -c python:studymaster.gunicorn_conf studymaster.wsgi`` with
``PROMETHEUS_MULTIPROC_DIR`` set in the environment to a directory only this service writes
(see docs/operations.md). Each worker writes its metric values to files there; ``/metrics``
in any worker adds them up. Without the variable these hooks do nothing.
"""

import os
from pathlib import Path

from prometheus_client import multiprocess

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))


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
