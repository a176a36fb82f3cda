"""Collection options and index specs: field order counts exactly where MongoDB gives it meaning."""

import pytest
from bson import SON, Int64

from migration_tools.options import comparable_option, order_sensitive_documents, same_options
from migration_tools.restore import option_differences, same_index


def _swapped(document: dict) -> SON:
    """The same fields in reverse order, as a mongodump hit by TOOLS-3411 may write them."""
    return SON(reversed(list(document.items())))


SCHEMA = SON(
    [
        ("bsonType", "object"),
        ("required", ["a", "b"]),
        (
            "properties",
            SON([("a", SON([("bsonType", "int"), ("minimum", 0)])), ("b", {"bsonType": "string"})]),
        ),
    ]
)


@pytest.mark.parametrize(
    ("name", "source", "reordered"),
    [
        ("validator", {"$jsonSchema": SCHEMA}, {"$jsonSchema": _swapped(SCHEMA)}),
        (
            "validator",
            {"$jsonSchema": SCHEMA},
            {"$jsonSchema": {**SCHEMA, "properties": _swapped(SCHEMA["properties"])}},
        ),
        (
            "validator",
            SON([("x", SON([("$gt", 1), ("$lt", 9)])), ("y", 2)]),
            SON([("y", 2), ("x", {"$lt": 9, "$gt": 1})]),
        ),
        ("validator", {"$or": [SON([("a", 1), ("b", 2)])]}, {"$or": [SON([("b", 2), ("a", 1)])]}),
        ("collation", SON([("locale", "en"), ("strength", 2)]), SON([("strength", 2), ("locale", "en")])),
        (
            "partialFilterExpression",
            SON([("a", {"$gt": 0}), ("b", {"$exists": True})]),
            SON([("b", {"$exists": True}), ("a", {"$gt": 0})]),
        ),
    ],
    ids=[
        "schema keywords",
        "schema properties",
        "query fields and operators",
        "inside $or",
        "collation",
        "partial filter",
    ],
)
def test_order_that_mongodb_ignores_is_ignored(name, source, reordered):
    assert comparable_option(name, source) == comparable_option(name, reordered)
    assert option_differences({name: source}, {name: reordered}) == []


@pytest.mark.parametrize(
    ("name", "source", "reordered"),
    [
        (
            "pipeline",
            [{"$sort": SON([("price", 1), ("weight", 1)])}],
            [{"$sort": SON([("weight", 1), ("price", 1)])}],
        ),
        (
            "validator",
            {"address": SON([("city", "X"), ("zip", "1")])},
            {"address": SON([("zip", "1"), ("city", "X")])},
        ),
        ("validator", {"a": {"$eq": SON([("x", 1), ("y", 2)])}}, {"a": {"$eq": SON([("y", 2), ("x", 1)])}}),
        (
            "validator",
            {"$jsonSchema": {"enum": [SON([("x", 1), ("y", 2)])]}},
            {"$jsonSchema": {"enum": [SON([("y", 2), ("x", 1)])]}},
        ),
        (
            "validator",
            {"$expr": {"$eq": [SON([("a", 1), ("b", 2)]), "$doc"]}},
            {"$expr": {"$eq": [SON([("b", 2), ("a", 1)]), "$doc"]}},
        ),
    ],
    ids=["view $sort", "equality on an embedded document", "$eq value", "enum value", "$expr"],
)
def test_order_that_carries_meaning_is_a_difference(name, source, reordered):
    assert comparable_option(name, source) != comparable_option(name, reordered)
    (difference,) = option_differences({name: source}, {name: reordered})
    assert difference.startswith(f"{name}: dump ")


def test_values_and_types_still_count():
    assert comparable_option("validator", {"a": {"$gt": 1}}) != comparable_option(
        "validator", {"a": {"$gt": 2}}
    )
    assert comparable_option("capped", True) != comparable_option("capped", 1)
    assert comparable_option("size", 4096) == comparable_option("size", Int64(4096))  # one number to MongoDB
    assert option_differences({"capped": True}, {}) == ["capped: dump True, target None"]


def test_index_keys_are_ordered_and_their_options_are_not():
    base = {
        "v": 2,
        "name": "ab",
        "key": SON([("a", 1), ("b", -1)]),
        "collation": SON([("locale", "fr"), ("strength", 1)]),
    }
    shuffled = {**base, "collation": _swapped(base["collation"])}
    assert same_index(base, shuffled) and same_options(base, shuffled)
    assert not same_index(base, {**base, "key": _swapped(base["key"])})
    assert not same_index(base, {**base, "unique": True})


def test_order_sensitive_documents_name_what_tools_3411_could_have_changed():
    assert (
        order_sensitive_documents(
            {"validator": {"$jsonSchema": SCHEMA}, "collation": {"locale": "en", "strength": 2}}
        )
        == []
    )
    assert order_sensitive_documents(
        {"viewOn": "items", "pipeline": [{"$match": {"a": 1}}, {"$sort": SON([("a", 1), ("b", 1)])}]}
    ) == ["pipeline[1].$sort"]
    assert order_sensitive_documents({"validator": {"address": SON([("city", "X"), ("zip", "1")])}}) == [
        "validator.address"
    ]
