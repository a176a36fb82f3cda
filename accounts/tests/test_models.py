"""The user model on MongoDB: ObjectId keys, migrations that create collections and indexes."""

import pytest
from bson import ObjectId
from django.core.exceptions import ValidationError
from django.db import connection

from accounts.models import User

pytestmark = pytest.mark.django_db


def test_users_get_object_id_primary_keys():
    user = User.objects.create_user("ada", "ada@example.com", "a-long-passphrase")
    assert isinstance(user.pk, ObjectId)
    assert User.objects.get(pk=str(user.pk)).username == "ada"


def test_migrate_created_the_collections_and_their_indexes():
    names = set(connection.introspection.table_names())
    assert {"accounts_user", "auth_permission", "django_content_type", "django_admin_log"} <= names
    index_info = connection.database["accounts_user"].index_information()
    username_index = [spec for spec in index_info.values() if spec["key"] == [("username", 1)]]
    assert username_index and username_index[0].get("unique")


def test_time_zone_must_be_iana():
    user = User(username="kim", time_zone="Mars/Olympus")
    with pytest.raises(ValidationError, match="IANA"):
        user.full_clean(exclude=["password"])


def _index_names(plan) -> set[str]:
    """Every index an explain plan scans, at any depth (plans nest differently across servers)."""
    if isinstance(plan, dict):
        found = {plan["indexName"]} if "indexName" in plan else set()
        return found.union(*(_index_names(value) for value in plan.values()))
    if isinstance(plan, list):
        return set().union(*(_index_names(value) for value in plan))
    return set()


def test_migrate_created_the_leaderboard_index_and_the_leaderboard_query_can_use_it():
    index_info = connection.database["accounts_user"].index_information()
    assert index_info["accounts_user_leaderboard"]["key"] == [
        ("leaderboard_opt_out", 1),
        ("is_active", 1),
        ("points", -1),
        ("username", 1),
    ]
    # The filter and sort of gamification.selectors.leaderboard_list(period="all").
    plan = (
        connection.database["accounts_user"]
        .find({"leaderboard_opt_out": False, "is_active": True, "points": {"$gt": 0}})
        .sort([("points", -1), ("username", 1)])
        .explain()
    )
    assert "accounts_user_leaderboard" in _index_names(plan["queryPlanner"]["winningPlan"])
