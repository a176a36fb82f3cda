"""Pinned deviations of SecantusDB from MongoDB (docs/architecture.md, defects A, B and C).

Each test asserts today's *wrong* answer, so it fails the day the surrogate is fixed;
then remove the workaround it names and turn the assertion around.
"""

import pytest

pytestmark = pytest.mark.embedded_only("pins defects of the SecantusDB surrogate, not MongoDB behaviour")


@pytest.fixture
def people(local_db):
    collection = local_db.db.people
    collection.insert_many(
        [
            {"_id": 1, "name": "ada", "profile": {"city": "London", "lang": "en"}},
            {"_id": 2, "name": "kim", "profile": {"city": "Seoul", "lang": "ko"}},
        ]
    )
    return collection


def test_defect_a_nested_inclusion_in_project_returns_literal_one(people):
    """MongoDB gives {"profile": {"city": "London"}}; SecantusDB gives {"profile": {"city": 1}}.

    Workaround: annotate with an alias (annotate(uname=F("user__username"))), and the
    permission-reading auth backend in accounts/backends.py, so staff keep admin access.
    """
    rows = list(people.aggregate([{"$project": {"profile": {"city": 1}}}, {"$sort": {"_id": 1}}]))
    assert rows[0]["profile"] == {"city": 1}  # MongoDB: {"city": "London"}


def test_defect_b_add_fields_with_nested_object_replaces_instead_of_merging(people):
    """MongoDB merges {"profile": {"tier": "gold"}} into the embedded document; SecantusDB replaces it.

    Workaround: order by local fields (content_type_id), never through select_related paths.
    """
    rows = list(people.aggregate([{"$addFields": {"profile": {"tier": "gold"}}}, {"$sort": {"_id": 1}}]))
    assert rows[0]["profile"] == {"tier": "gold"}  # MongoDB: {"city": "London", "lang": "en", "tier": "gold"}


def test_defect_c_type_of_missing_expression_is_object(people):
    """MongoDB answers "missing"; SecantusDB answers "object", so JSONField has_key matches every row.

    Workaround: filter with key__isnull=False instead of has_key.
    """
    missing_key = {"$getField": {"field": "nope", "input": "$profile"}}  # the shape has_key emits
    rows = list(people.aggregate([{"$project": {"t": {"$type": missing_key}}}, {"$sort": {"_id": 1}}]))
    assert rows[0]["t"] == "object"  # MongoDB: "missing"
    present_key = {"$getField": {"field": "city", "input": "$profile"}}
    rows = list(people.aggregate([{"$project": {"t": {"$type": present_key}}}, {"$sort": {"_id": 1}}]))
    assert rows[0]["t"] == "string"  # right here: only the missing case is wrong
