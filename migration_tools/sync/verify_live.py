"""Verification while the source stays live, as MongoDB's migration-verifier does it.

One full pass compares every collection: options, indexes, and the documents of both sides
read in ``_id`` order, byte for byte. A document that differs is not yet a difference: the
target may simply lag. It joins the recheck set, and so does every ``_id`` a change event
touches from then on. Rechecks run only when the sync has applied every event up to the
source's current operation time: a document that still differs three times in a row then,
without a change event in between, is a difference. So at cut-over only what changed since
the last recheck is left to compare, however large the data.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from bson import Binary
from bson.raw_bson import RawBSONDocument
from pymongo.errors import CursorNotFound

from gamification.invariants import ledger_collection, users_collection
from migration_tools.bsonfiles import RAW
from migration_tools.dump import PER_USER_MODELS, list_dumpable
from migration_tools.restore import option_differences
from migration_tools.sync.apply import Pacer, id_key, id_value
from migration_tools.sync.copy import documents_by_id
from migration_tools.verify import index_differences, ttl_expired, ttl_fields

MISMATCHES_FOR_A_DIFFERENCE = 3
RECHECK_CHUNK = 200
RECHECK_LIMIT = 100_000  # beyond it, the set is dropped and a new full pass finds what differs
SHOWN = 5
SETTLED_RECHECK_SECONDS = 5.0
# The documents of the invariants' collections changed since the full pass began, for the
# cut-over's check of the users they belong to; beyond this many, every user is checked.
TOUCHED_LIMIT = 20_000


def invariant_collections() -> set[str]:
    """The collections the domain invariants read: users, the ledger, and the per-user ones."""
    return {users_collection(), ledger_collection(), *(model._meta.db_table for model in PER_USER_MODELS)}


class LiveVerifier:
    """The full pass, the recheck set and the differences; saved with the sync state."""

    def __init__(self, source_db, target_db, *, pacer: Pacer, saved: dict | None = None) -> None:
        self.source_db = source_db.with_options(codec_options=RAW)
        self.target_db = target_db.with_options(codec_options=RAW)
        self.pacer = pacer
        saved = saved or {}
        full_pass = saved.get("full_pass") or {}
        self.pass_done = bool(full_pass.get("done"))
        self.collections_done: list[str] = list(full_pass.get("collections_done") or [])
        self.compared = int(full_pass.get("documents") or 0)
        self.pass_started_at = full_pass.get("started_at")
        self.pass_finished_at = full_pass.get("finished_at")
        self.rechecked = int(saved.get("rechecked") or 0)
        self.recheck: dict[str, dict[bytes, int]] = {}
        for entry in saved.get("recheck") or []:
            self.recheck[entry["collection"]] = dict.fromkeys((bytes(key) for key in entry["ids"]), 0)
        self.structure: dict[str, list[str]] = {
            entry["collection"]: list(entry["differences"]) for entry in saved.get("structure") or []
        }
        self.structure_pending: set[str] = set(saved.get("structure_pending") or [])
        self.touched: dict[str, set[bytes]] = {
            entry["collection"]: {bytes(key) for key in entry["ids"]} for entry in saved.get("touched") or []
        }
        self.touched_overflow = bool(saved.get("touched_overflow"))
        self._invariant_collections = invariant_collections()
        self._walk = None
        self._ttl: dict[str, list] = {}
        self._settled_checked_at = 0.0
        self._last_catch_up: int | None = None

    # -- what the applier tells us ------------------------------------------------------------
    def note_changed(self, changed: dict[str, set[bytes]]) -> None:
        """These documents changed: compare them again (their mismatch count starts over)."""
        for name, keys in changed.items():
            entries = self.recheck.setdefault(name, {})
            for key in keys:
                entries[key] = 0
            if name in self._invariant_collections and not self.touched_overflow:
                self.touched.setdefault(name, set()).update(keys)
        if sum(len(keys) for keys in self.touched.values()) > TOUCHED_LIMIT:
            self.touched, self.touched_overflow = {}, True
        if sum(len(keys) for keys in self.recheck.values()) > RECHECK_LIMIT:
            self.restart_pass()

    def note_structure_changed(self, names: set[str]) -> None:
        self.structure_pending |= names

    def restart_pass(self) -> None:
        self.pass_done, self.collections_done, self.compared = False, [], 0
        self.pass_started_at = self.pass_finished_at = None
        self.recheck.clear()
        self.touched, self.touched_overflow = {}, False
        self._walk = None

    # -- the work, in slices ------------------------------------------------------------------
    def step(self, *, catch_up: int | None, budget_seconds: float = 0.3) -> None:
        """Advance the full pass, then do one round of rechecks, for about ``budget_seconds``.

        ``catch_up`` numbers the moments the sync had applied every event up to the source's
        operation time (None: not caught up now). A round of rechecks runs once per such
        moment, so three mismatches of one document are three separate moments.
        """
        deadline = time.monotonic() + budget_seconds
        if not self.pass_done:
            self._advance_pass(deadline)
        if catch_up is None or catch_up == self._last_catch_up:
            return
        self._last_catch_up = catch_up
        self._round(deadline)

    def settle(self, *, budget_seconds: float = 0.3) -> bool:
        """One round at once (the source is frozen and every event applied): whether all is settled."""
        self._round(time.monotonic() + budget_seconds)
        return self.complete

    def _round(self, deadline: float) -> None:
        for name in sorted(self.structure_pending):
            self.structure[name] = self._structure_differences(name)
            self.structure_pending.discard(name)
        self._recheck_round(deadline)

    def _advance_pass(self, deadline: float) -> None:
        if self._walk is None:
            self.pass_started_at = self.pass_started_at or datetime.now(UTC)
            self._walk = self._full_pass()
        try:
            while time.monotonic() < deadline:
                if next(self._walk, None) is None:
                    self._walk = None
                    self.pass_done = True
                    self.pass_finished_at = datetime.now(UTC)
                    return
        except CursorNotFound:
            self._walk = None  # idle past the server's cursor timeout: that collection starts again

    def _names(self) -> list[str]:
        return sorted({info["name"] for db in (self.source_db, self.target_db) for info in list_dumpable(db)})

    def _full_pass(self):
        for name in self._names():
            if name in self.collections_done:
                continue
            self.structure[name] = self._structure_differences(name)
            self.structure_pending.discard(name)
            ttl = self.ttl_of(name)
            now = datetime.now(UTC)
            source = documents_by_id(self.source_db[name])
            target = documents_by_id(self.target_db[name], self.pacer)
            here, there = next(source, None), next(target, None)
            while here is not None or there is not None:
                if there is None or (here is not None and here[0] < there[0]):
                    if not ttl_expired(here[1], ttl, now):
                        self._mismatch(name, here[1])
                    here = next(source, None)
                elif here is None or there[0] < here[0]:
                    self._mismatch(name, there[1])
                    there = next(target, None)
                else:
                    if here[1] != there[1]:
                        self._mismatch(name, here[1])
                    here, there = next(source, None), next(target, None)
                self.compared += 1
                if self.compared % 500 == 0:
                    yield name
            self.collections_done.append(name)
            yield name

    def _mismatch(self, name: str, raw) -> None:
        self.recheck.setdefault(name, {}).setdefault(id_key(_raw(raw)), 0)

    def ttl_of(self, name: str) -> list:
        """The target's TTL indexes of ``name``, as ``verify.ttl_fields`` gives them (read once)."""
        if name not in self._ttl:
            self.pacer.take()
            self._ttl[name] = ttl_fields([dict(index) for index in self.target_db[name].list_indexes()])
        return self._ttl[name]

    def _structure_differences(self, name: str) -> list[str]:
        """Options and indexes of one collection, source against target."""
        sides = []
        for db in (self.source_db, self.target_db):
            info = next(iter(db.list_collections(filter={"name": name})), None)
            if info is None:
                sides.append(None)
                continue
            sides.append(
                (dict(info.get("options") or {}), [dict(index) for index in db[name].list_indexes()])
            )
        self.pacer.take(2)
        self._ttl.pop(name, None)
        if sides[1] is None:
            return ["collection missing in the target"]
        if sides[0] is None:
            return ["collection not in the source"]
        (source_options, source_indexes), (target_options, target_indexes) = sides
        return option_differences(source_options, target_options) + index_differences(
            source_indexes, target_indexes
        )

    def _recheck_round(self, deadline: float) -> None:
        """Compare unsettled documents in chunks until ``deadline``; the ones left go next round.

        Documents already counted as differences are looked at again every few seconds only
        (a late write from the refresh set may still settle them).
        """
        settled_too = time.monotonic() - self._settled_checked_at >= SETTLED_RECHECK_SECONDS
        if settled_too:
            self._settled_checked_at = time.monotonic()
        for name in list(self.recheck):
            entries = self.recheck[name]
            keys = [
                key for key, count in entries.items() if settled_too or count < MISMATCHES_FOR_A_DIFFERENCE
            ]
            for start in range(0, len(keys), RECHECK_CHUNK):
                if time.monotonic() >= deadline:
                    return
                self._compare(name, keys[start : start + RECHECK_CHUNK])

    def _compare(self, name: str, keys: list[bytes]) -> None:
        values = [id_value(key) for key in keys]
        source = {id_key(doc): doc.raw for doc in self.source_db[name].find({"_id": {"$in": values}})}
        self.pacer.take()
        target = {id_key(doc): doc.raw for doc in self.target_db[name].find({"_id": {"$in": values}})}
        ttl, now = self.ttl_of(name), datetime.now(UTC)
        entries = self.recheck[name]
        for key in keys:
            self.rechecked += 1
            here, there = source.get(key), target.get(key)
            count = entries.pop(key)
            if not (here == there or (there is None and ttl_expired(here, ttl, now))):
                entries[key] = count + 1  # to the end: the others come first next round
        if not entries:
            del self.recheck[name]

    # -- what to show and save ----------------------------------------------------------------
    def differences(self) -> list[str]:
        """Documents that still differ after the rechecks, and option or index differences."""
        found = [
            f"{name}: _id {id_value(key)!r} differs"
            for name, entries in sorted(self.recheck.items())
            for key, count in entries.items()
            if count >= MISMATCHES_FOR_A_DIFFERENCE
        ]
        return found + [f"{name}: {text}" for name, texts in sorted(self.structure.items()) for text in texts]

    @property
    def pending(self) -> int:
        return sum(len(entries) for entries in self.recheck.values())

    @property
    def complete(self) -> bool:
        """The full pass is done and every recheck has been settled, one way or the other."""
        unsettled = any(
            count < MISMATCHES_FOR_A_DIFFERENCE
            for entries in self.recheck.values()
            for count in entries.values()
        )
        return self.pass_done and not unsettled and not self.structure_pending

    def summary(self) -> dict:
        differences = self.differences()
        return {
            "full_pass_done": self.pass_done,
            "collections_verified": len(self.collections_done),
            "documents_compared": self.compared,
            "rechecked": self.rechecked,
            "pending_rechecks": self.pending,
            "differences": len(differences),
            "first_differences": differences[:SHOWN],
        }

    def to_state(self) -> dict:
        return {
            "full_pass": {
                "done": self.pass_done,
                "collections_done": self.collections_done,
                "documents": self.compared,
                "started_at": self.pass_started_at,
                "finished_at": self.pass_finished_at,
            },
            "rechecked": self.rechecked,
            "recheck": [
                {"collection": name, "ids": [Binary(key) for key in entries]}
                for name, entries in self.recheck.items()
                if entries
            ],
            "structure": [
                {"collection": name, "differences": texts} for name, texts in self.structure.items()
            ],
            "structure_pending": sorted(self.structure_pending),
            "touched": [
                {"collection": name, "ids": [Binary(key) for key in keys]}
                for name, keys in self.touched.items()
            ],
            "touched_overflow": self.touched_overflow,
        }


def _raw(raw) -> RawBSONDocument:
    return RawBSONDocument(bytes(raw), RAW)
