"""Database health: a bounded ping, with the server's version and the round-trip time."""

from __future__ import annotations

import time

from pymongo import MongoClient


def database_ping(client: MongoClient, db_name: str) -> dict:
    """Ping ``db_name`` and describe the server; PyMongo errors propagate to the caller."""
    started = time.perf_counter()
    client[db_name].command("ping")
    latency_ms = (time.perf_counter() - started) * 1000
    build = client[db_name].command("buildInfo")
    return {"status": "ok", "latency_ms": round(latency_ms, 2), "server_version": build.get("version", "")}
