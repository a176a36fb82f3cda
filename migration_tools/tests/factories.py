"""Source databases for the migration tests: awkward BSON, indexes, options, domain data."""

from __future__ import annotations

import datetime
import re
import uuid

import bson
from bson import SON, Binary, Code, DBRef, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.binary import UuidRepresentation

from gamification import invariants, totals
from sessions_app.models import StudySession
from studymaster.db import db_date

OID = ObjectId("65f000000000000000000001")


def every_bson_type() -> SON:
    """One document holding every BSON type a collection can store, in a deliberate field order."""
    return SON(
        [
            ("_id", OID),
            ("double", 1.5),
            ("nan", float("nan")),
            ("negative_zero", -0.0),
            ("infinity", float("inf")),
            ("string", "héllo \u2603"),
            ("document", SON([("z", 1), ("a", 2)])),
            ("array", [1, "two", [3.0], {"four": 4}]),
            ("binary_generic", Binary(b"\x00\x01\x02", 0)),
            ("binary_function", Binary(b"f", 1)),
            ("binary_uuid", Binary.from_uuid(uuid.UUID(int=7), UuidRepresentation.STANDARD)),
            ("binary_md5", Binary(b"0123456789abcdef", 5)),
            ("binary_user", Binary(b"user", 0x80)),
            ("object_id", ObjectId("65f0000000000000000000ff")),
            ("true", True),
            ("false", False),
            ("datetime", datetime.datetime(2024, 2, 29, 12, 30, 15, 123000, tzinfo=datetime.UTC)),
            ("before_epoch", datetime.datetime(1901, 1, 1, tzinfo=datetime.UTC)),
            ("null", None),
            ("regex", Regex("^a.*b$", "imsx")),
            ("compiled_regex", re.compile("x+", re.IGNORECASE)),
            ("dbref", DBRef("other", ObjectId("65f0000000000000000000aa"), "otherdb", extra=1)),
            ("code", Code("function () { return 1; }")),
            ("code_with_scope", Code("function () { return x; }", {"x": 1})),
            ("int32", 42),
            ("int64", Int64(42)),
            ("big_int64", Int64(2**62)),
            ("timestamp", Timestamp(1700000000, 7)),
            ("decimal", Decimal128("1234.5678901234567890123456789012")),
            ("decimal_nan", Decimal128("NaN")),
            ("decimal_negative_zero", Decimal128("-0")),
            ("min_key", MinKey()),
            ("max_key", MaxKey()),
        ]
    )


def mixed_ids() -> list:
    """_ids of many BSON types (no two equal in value), in no particular order."""
    return [
        "a string",
        MaxKey(),
        Int64(5),
        3,
        2.5,
        float("-inf"),
        Decimal128("4.5"),
        ObjectId("65f000000000000000000002"),
        {"compound": 1, "key": "x"},
        Binary(b"\x01", 0),
        True,
        datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
        Timestamp(1, 1),
        MinKey(),
        None,
        "B upper",
        "",
    ]


def populate_awkward(db, *, big_documents: bool = False) -> None:
    """Collections that exercise every corner the tools must carry across unchanged."""
    db["every.type"].insert_one(every_bson_type())
    db["mixed_ids"].insert_many([{"_id": value, "n": n} for n, value in enumerate(mixed_ids())])
    db["field_order"].insert_many(
        [SON([("_id", n), ("b", 1), ("a", 2), ("c", {"y": 1, "x": 2})]) for n in range(3)]
    )
    db.create_collection(
        "validated",
        validator={"$jsonSchema": {"bsonType": "object", "required": ["name"]}},
        validationLevel="strict",
        validationAction="error",
    )
    db["validated"].insert_many([{"_id": n, "name": f"n{n}"} for n in range(5)])
    db.create_collection("empty")
    db.create_collection("empty.with.dots")
    indexed = db["indexed"]
    now = datetime.datetime.now(datetime.UTC)
    indexed.insert_many(
        [
            {"_id": n, "email": f"u{n}@x", "a": n % 3, "b": -n, "sp": n if n % 2 else None, "seen": now}
            for n in range(20)
        ]
    )
    indexed.create_index("email", unique=True, name="email_unique")
    indexed.create_index([("a", 1), ("b", -1)], name="a_b_compound")
    indexed.create_index("b", partialFilterExpression={"a": {"$gt": 0}}, name="b_partial")
    indexed.create_index("sp", sparse=True, name="sp_sparse")
    indexed.create_index("seen", expireAfterSeconds=3600 * 24 * 365, name="seen_ttl")
    # A view, with a collation (named settings) and no document whose field order is meaning.
    db.command(
        SON(
            [
                ("create", "indexed_positive"),
                ("viewOn", "indexed"),
                ("pipeline", [{"$match": {"a": {"$gt": 0}}}, {"$project": {"email": 1}}]),
                ("collation", SON([("locale", "en"), ("strength", 2)])),
            ]
        )
    )
    if big_documents:
        seven_mb = "x" * (7 * 1024 * 1024)
        db["big"].insert_many([{"_id": 1, "blob": seven_mb}, {"_id": 2, "blob": seven_mb + "y"}])


def populate_domain(db, *, users: int = 3) -> list[ObjectId]:
    """Users with points, ledger entries, badges, achievements, study sessions and the maintained
    totals (``gamification.totals``) that agree, written as raw documents."""
    studied = datetime.datetime(2026, 3, 2, 9, 0)
    user_ids = [ObjectId() for _ in range(users)]
    for n, user_id in enumerate(user_ids):
        amounts = [10 * (n + 1), 5, -2]
        ledger = [
            {"user_id": user_id, "amount": amount, "reason": "study", "studied_at": studied}
            for amount in amounts
        ]
        sessions = [
            {
                "user_id": user_id,
                "subject": "math",
                "subject_key": "math",
                "duration_minutes": 25,
                "local_date": studied + datetime.timedelta(days=day),
            }
            for day in range(n + 1)
        ]
        expected = totals.expected_totals(
            [invariants.session_facts(row, invariants.session_columns(StudySession)) for row in sessions],
            [invariants.ledger_facts(row) for row in ledger],
        )
        progress = dict(expected.user, last_study_date=db_date(expected.user["last_study_date"]))
        db["accounts_user"].insert_one({"_id": user_id, "username": f"u{n}", **progress})
        db["gamification_pointsentry"].insert_many(ledger)
        db["sessions_app_studysession"].insert_many(sessions)
        db["gamification_studytotal"].insert_many(
            [{"user_id": user_id, "key": key, **fields} for key, fields in expected.documents.items()]
        )
        db["gamification_weekpoints"].insert_many(
            [
                {
                    "user_id": user_id,
                    "week_start": db_date(week),
                    "points": points,
                    "username": f"u{n}",
                    "listed": True,
                }
                for week, points in expected.week_points.items()
            ]
        )
        db["gamification_userbadge"].insert_one({"user_id": user_id, "badge": "first"})
        db["gamification_achievement"].insert_one({"user_id": user_id, "kind": "streak"})
    return user_ids


def rewrite_bson_file(path, documents) -> None:
    """Write ``documents`` (raw bytes or dicts) back to back, as mongodump does."""
    with open(path, "wb") as stream:
        for document in documents:
            stream.write(document if isinstance(document, bytes) else bson.encode(document))
