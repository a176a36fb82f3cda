"""The invariants as pure functions, and the readers that gather their counts (raw BSON, a database)."""

from __future__ import annotations

import bson
import pytest
from bson import SON, Int64, ObjectId
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from django.db import connection

from gamification.invariants import (
    RawUserFields,
    UserTally,
    count_differences,
    ledger_check,
    orphans,
    points_off_ledger,
    raw_counts_by_user,
    user_value,
)
from gamification.models import Achievement, PointsEntry, UserBadge
from gamification.services import points_award
from gamification.tests.factories import make_user

ADA, BOB, GONE = ObjectId(), ObjectId(), ObjectId()


def test_points_off_ledger_names_the_users_whose_points_differ():
    assert points_off_ledger({"ada": 30, "bob": 5, "cy": 0}, {"ada": 30, "bob": 4}) == ["bob"]


def test_orphans_are_documents_of_users_that_do_not_exist():
    assert orphans({"ada": 2, "gone": 3, None: 1}, {"ada", "bob"}) == 4


def test_count_differences_compares_documents_per_user_both_ways():
    assert count_differences({"a": 1, "b": 2}, {"b": 3, "c": 1}) == ["a", "b", "c"]
    assert count_differences({"a": 1}, {"a": 1}) == []


def _entry(user, amount, **more) -> bytes:
    return bson.encode(SON([("_id", ObjectId()), ("user_id", user), ("amount", amount), *more.items()]))


def test_the_field_names_come_from_the_models():
    ledger = RawUserFields.of(PointsEntry)
    assert (ledger.user_field, ledger.amount_field) == ("user_id", "amount")
    assert (RawUserFields.of(UserBadge).user_field, RawUserFields.of(UserBadge).amount_field) == (
        "user_id",
        None,
    )


def test_the_raw_reader_reads_the_orms_layout_and_decodes_any_other():
    documents = [
        _entry(ADA, 10),
        _entry(ADA, Int64(2**40)),
        bson.encode(SON([("_id", "text id"), ("user_id", BOB), ("amount", 7)])),  # _id not an ObjectId
        bson.encode(SON([("_id", ObjectId()), ("reason", "x"), ("user_id", BOB), ("amount", 1.5)])),
        bson.encode({"_id": ObjectId(), "note": "no user, no amount"}),
    ]
    read = list(RawUserFields.of(PointsEntry).users_and_amounts(documents))
    assert [(user_value(user), amount) for user, amount in read] == [
        (ADA, 10),
        (ADA, 2**40),
        (BOB, 7),
        (BOB, 1.5),
        (None, 0),
    ]


def test_the_fast_path_reads_by_position_without_decoding_the_rest():
    # What follows the amount is not valid BSON: only a read by position can get through.
    document = bytearray(_entry(ADA, 5, reference="x" * 20))
    document[-10:-1] = b"\xff" * 9
    with pytest.raises(bson.errors.InvalidBSON):
        bson.decode(bytes(document))
    assert list(RawUserFields.of(PointsEntry).users_and_amounts([bytes(document)])) == [(ADA.binary, 5)]


def test_counts_by_user_name_users_as_verify_does():
    documents = [_entry(ADA, 1), _entry(ADA, 1), bson.encode({"_id": 1, "user_id": "legacy"})]
    assert raw_counts_by_user(Achievement, documents) == {str(ADA): 2, "legacy": 1}


def _user(user_id, points) -> bytes:
    return bson.encode({"_id": user_id, "username": str(user_id), "points": points})


def test_the_tally_warns_of_orphans_and_points_off_the_ledger():
    tally = UserTally([UserBadge])
    for name in ("accounts_user", "gamification_pointsentry", "gamification_userbadge"):
        tally.start(name)
    tally.add("accounts_user", [_user(ADA, 15), _user(BOB, 0)])
    tally.add("gamification_pointsentry", [_entry(ADA, 10), _entry(ADA, 5), _entry(BOB, 1)])
    tally.add("gamification_userbadge", [_entry(ADA, 0), _entry(GONE, 0), _entry(GONE, 0)])
    tally.add("sessions_app_studysession", [_entry(GONE, 0)])  # not a per-user model here: ignored
    assert tally.warnings() == [
        "gamification_userbadge: 2 document(s) whose user does not exist (orphans).",
        f"accounts_user: 1 user(s) whose points differ from the sum of their gamification_pointsentry "
        f"amounts (first: {BOB}).",
    ]


def test_the_tally_says_nothing_without_the_users():
    tally = UserTally([UserBadge])
    tally.start("gamification_userbadge")
    tally.add("gamification_userbadge", [_entry(GONE, 0)])
    assert tally.warnings() == []


@pytest.mark.django_db
def test_the_ledger_check_reads_what_the_services_wrote():
    ada, bob = make_user(), make_user()
    points_award(user=ada, amount=40, reason=PointsEntry.Reason.QUEST_REWARD, reference="q1")
    points_award(user=bob, amount=10, reason=PointsEntry.Reason.QUEST_REWARD, reference="q1")
    assert ledger_check(connection.database).off_ledger == []
    type(ada).objects.filter(pk=bob.pk).update(points=11)
    assert ledger_check(connection.database).off_ledger == [str(bob.pk)]
    only_ada = ledger_check(connection.database, user_ids=[ada.pk])
    assert (only_ada.users, only_ada.off_ledger) == (1, [])


@pytest.mark.django_db
def test_the_orms_documents_take_the_fast_path():
    user = make_user()
    points_award(user=user, amount=25, reason=PointsEntry.Reason.QUEST_REWARD, reference="q1")
    raw = CodecOptions(document_class=RawBSONDocument)
    document = (
        connection.database.get_collection(PointsEntry._meta.db_table, codec_options=raw).find_one().raw
    )
    # The ORM writes _id, then the user, then the amount: the layout the fast path reads.
    assert document[4:9] == b"\x07_id\x00" and document[21:30] == b"\x07user_id\x00"
    assert list(RawUserFields.of(PointsEntry).users_and_amounts([document])) == [(user.pk.binary, 25)]
