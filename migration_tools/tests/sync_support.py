"""Helpers of the live-sync tests: a writer of every kind of change, and waiting for the sync."""

from __future__ import annotations

import datetime
import io
import itertools
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bson import SON, Binary, Decimal128, Int64, MaxKey, MinKey, ObjectId, Timestamp
from pymongo import MongoClient

from migration_tools.bsonfiles import DECODE
from migration_tools.sync import STATE_COLLECTION, LiveSync, SyncOptions
from migration_tools.tests.factories import every_bson_type, mixed_ids
from migration_tools.verify import LiveSide, verify
from studymaster.mongo import client_options


def client(uri: str) -> MongoClient:
    return MongoClient(uri, **client_options(uri))


def options(source, target, **overrides) -> SyncOptions:
    """SyncOptions between two MongoDatabase fixtures (or (uri, name) pairs), unpaced."""
    values = {
        "source_uri": source.uri,
        "target_uri": target.uri,
        "source_db": source.name,
        "target_db": target.name,
        "max_ops_per_second": 0,
        **overrides,
    }
    return SyncOptions(**values)


class SyncThread(threading.Thread):
    """A LiveSync run in a thread of the test; ``error`` holds what it raised."""

    def __init__(self, sync_options: SyncOptions, **kwargs) -> None:
        super().__init__(daemon=True)
        self.lines: list[str] = []
        self.sync = LiveSync(sync_options, say=self.lines.append, **kwargs)
        self.figures = self.error = None

    def run(self) -> None:
        try:
            self.figures = self.sync.run()
        except BaseException as exc:
            self.error = exc

    def finish(self, timeout: float = 60) -> None:
        self.sync.stop.set()
        self.join(timeout)
        assert not self.is_alive(), "the sync did not stop"
        if self.error is not None:
            raise self.error


def state(target_db) -> dict | None:
    return target_db.get_collection(STATE_COLLECTION, codec_options=DECODE).find_one({"_id": "state"})


def wait_for(predicate, *, timeout: float = 60, what: str = "the sync", alive=None, explain=None):
    """Poll ``predicate`` until true; ``explain()`` adds to the message of a timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if alive is not None and not alive():
            raise AssertionError(f"{what}: the sync ended first")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{explain()}" if explain else ""))


def mark(source_db) -> Timestamp:
    """A last write whose operation time the sync must reach: then it has applied everything before."""
    with source_db.client.start_session() as session:
        source_db["sync_marker"].update_one({"_id": 1}, {"$inc": {"n": 1}}, upsert=True, session=session)
        return session.operation_time


def synced(target_db, marker: Timestamp, *, verified: bool = True) -> bool:
    """The sync applied the marker's event and (``verified``) settled every recheck."""
    saved = state(target_db)
    if not saved or saved["stream"].get("applied_through") is None:
        return False
    if saved["stream"]["applied_through"] < marker:
        return False
    verify_state = saved.get("verify") or {}
    return not verified or (
        (verify_state.get("full_pass") or {}).get("done") and not verify_state.get("recheck")
    )


def compare(source_db, target_db, **kwargs):
    """verify() of the target against the source (the tools' own collections are left out)."""
    return verify(
        LiveSide(source_db),
        target_db,
        source_label="source",
        target_label="target",
        source_db=source_db.name,
        **kwargs,
    )


def awkward(n: int) -> SON:
    """A document of every BSON type, keyed ``n``, with fields in a deliberate order."""
    document = every_bson_type()
    document["_id"] = n
    document["n"] = n
    return document


class ChangeWriter(threading.Thread):
    """Raw writes of every kind on the source until stopped; ``rounds`` counts them.

    Each round: an insert of awkward BSON; updates with $set (awkward values), $unset,
    $push and $inc; a replace; a delete; an update whose document is deleted straight after
    (so its post-image is gone when the sync reads it); a multi-document transaction; an
    update by each kind of awkward _id; and two documents swapping their values of a unique
    index (a collision a post-image can replay out of order).
    """

    def __init__(self, uri: str, db_name: str, *, pause: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.client = client(uri)
        self.db = self.client[db_name]
        self.pause = pause
        self.stopping = threading.Event()
        self.rounds = 0
        self.error: BaseException | None = None

    def prepare(self) -> None:
        self.db["live"].insert_many([awkward(n) for n in range(20)])
        self.db["pairs"].insert_many([{"_id": n, "email": f"e{n}@x"} for n in range(2)])
        self.db["pairs"].create_index("email", unique=True, name="email_unique")
        self.db["counters"].insert_one({"_id": "total", "value": Int64(0), "history": []})
        if self.db["mixed_ids"].find_one() is None:
            self.db["mixed_ids"].insert_many([{"_id": value, "n": n} for n, value in enumerate(mixed_ids())])

    def run(self) -> None:
        try:
            for n in itertools.count(1000):
                if self.stopping.is_set():
                    return
                self.write_round(n)
                self.rounds += 1
                time.sleep(self.pause)
        except BaseException as exc:
            self.error = exc
        finally:
            self.client.close()

    def write_round(self, n: int) -> None:
        live = self.db["live"]
        live.insert_one(awkward(n))
        live.update_one(
            {"_id": n - 1},
            {
                "$set": {
                    "decimal": Decimal128("-0"),
                    "nested.deep": [MinKey(), MaxKey()],
                    "nan": float("nan"),
                },
                "$unset": {"regex": ""},
                "$push": {"array": {"$each": [Binary(b"\x00", 0x80), -0.0]}},
                "$inc": {"int64": Int64(1), "int32": 1},
            },
        )
        live.replace_one({"_id": n - 2}, SON([("z", 1), ("_id", n - 2), ("a", ObjectId()), ("when", _now())]))
        live.delete_one({"_id": n - 5})
        live.update_one({"_id": n - 3}, {"$set": {"gone_soon": True}, "$pop": {"array": 1}})
        live.delete_one({"_id": n - 3})
        with self.client.start_session() as session, session.start_transaction():
            self.db["ledger"].insert_one({"_id": ObjectId(), "round": n, "amount": Int64(n)}, session=session)
            self.db["counters"].update_one(
                {"_id": "total"}, {"$inc": {"value": Int64(n)}, "$push": {"history": n}}, session=session
            )
            self.db["ledger"].delete_many({"round": n - 50}, session=session)
        for value in mixed_ids():
            self.db["mixed_ids"].update_one({"_id": value}, {"$inc": {"n": 1}})
        pairs = self.db["pairs"]
        first, second = pairs.find_one({"_id": 0})["email"], pairs.find_one({"_id": 1})["email"]
        pairs.update_one({"_id": 0}, {"$set": {"email": f"moving{n}@x"}})
        pairs.update_one({"_id": 1}, {"$set": {"email": first}})
        pairs.update_one({"_id": 0}, {"$set": {"email": second}})


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


# -- the command ------------------------------------------------------------------------------------
def sync_command(*args) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``manage.py sync_atlas`` run in this process."""
    from django.core.management import call_command
    from django.core.management.base import CommandError

    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("sync_atlas", *args, stdout=out, stderr=err)
        code = 0
    except CommandError as exc:
        code = exc.returncode
        err.write(str(exc))
    return code, out.getvalue(), err.getvalue()


# -- the command in a process of its own (to kill it) -----------------------------------------------
ROOT = Path(__file__).resolve().parents[2]


def between(source, target, *extra: str) -> tuple[str, ...]:
    """sync_atlas's options naming ``source`` and ``target`` (anything with ``uri`` and ``name``)."""
    return (
        "--source-uri",
        source.uri,
        "--db",
        source.name,
        "--target-uri",
        target.uri,
        "--target-db",
        target.name,
        *extra,
    )


def sync_process(source, target, log_path: Path, *extra: str) -> subprocess.Popen:
    """``manage.py sync_atlas`` from ``source`` to ``target`` (MongoDatabase-like), output to a file.

    The application's database (MONGODB_URI) is the source, as before a cut-over.
    """
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="studymaster.settings.test",
        MONGODB_URI=source.uri,
        MONGODB_DB_NAME=source.name,
    )
    command = [
        sys.executable,
        "manage.py",
        "sync_atlas",
        *between(source, target, "--max-ops-per-second", "0", *extra),
    ]
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


@dataclass
class Database:
    """Where a database is: the shape of conftest's MongoDatabase, for the Django test database."""

    uri: str
    name: str


class DomainActivity:
    """Changes through the application's API: registrations, logins, profile updates, and study
    sessions logged and deleted (so points, the ledger, streaks and badges all move)."""

    PASSWORD = "a-long-passphrase-for-sync"

    def __init__(self) -> None:
        self.clients: list = []
        self.sessions: list[tuple] = []
        self.steps = 0
        self.tag = uuid.uuid4().hex[:6]

    def step(self) -> None:
        from django.utils import timezone
        from rest_framework.test import APIClient

        n, self.steps = self.steps, self.steps + 1
        kind = n % 6 if len(self.clients) >= 3 or n % 6 else 0
        if kind == 0 and len(self.clients) < 8:  # the register throttle allows 10 a minute
            username = f"sync{self.tag}{n}"
            response = APIClient().post(
                "/api/auth/register/",
                {"username": username, "email": f"{username}@example.com", "password": self.PASSWORD},
                format="json",
            )
            assert response.status_code == 201, response.content
            login = APIClient().post(
                "/api/auth/token/", {"username": username, "password": self.PASSWORD}, format="json"
            )
            assert login.status_code == 200, login.content
            api = APIClient()
            api.credentials(HTTP_AUTHORIZATION=f"Bearer {login.json()['access']}")
            self.clients.append(api)
        elif kind == 4:
            api = self.clients[n % len(self.clients)]
            assert api.patch("/api/me/", {"display_name": f"Learner {n}"}, format="json").status_code == 200
        elif kind == 5 and self.sessions:
            api, session_id = self.sessions.pop(0)
            assert api.delete(f"/api/sessions/{session_id}/").status_code == 204
        else:
            api = self.clients[n % len(self.clients)]
            # 40 minutes apart, going back at most 241 steps (6.7 days: within the backdating
            # limit however long a slow run writes); 241 is prime, so a client meets its own
            # earlier start only after 241 x 8 writes.
            started = timezone.now() - datetime.timedelta(minutes=40 * (n % 241) + 31)
            response = api.post(
                "/api/sessions/",
                {
                    "subject": ["Algebra", "Physics", "History"][n % 3],
                    "duration_minutes": 30,
                    "started_at": started.isoformat(),
                },
                format="json",
            )
            assert response.status_code == 201, response.content
            self.sessions.append((api, response.json()["id"]))
