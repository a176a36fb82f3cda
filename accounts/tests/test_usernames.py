"""Usernames compare by a normalised key and a confusables skeleton: registration, login, the
admin's forms, the unique indexes, and the migration that fills them for existing accounts."""

import importlib
import os
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.management import CommandError
from django.db import IntegrityError
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import PASSWORD, user_create
from accounts.usernames import username_fields, username_key, username_skeleton

ROOT = Path(__file__).resolve().parents[2]
MIGRATION = importlib.import_module("accounts.migrations.0006_user_username_key_skeleton")
CYRILLIC_E = "\u0435"


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Learner09", "learner09"),
        ("learner０９", "learner09"),
        (" learner09\t", "learner09"),
        ("Straße", "strasse"),
    ],
)
def test_the_key_is_nfkc_trimmed_and_case_folded(name, key):
    assert username_key(name) == key


@pytest.mark.parametrize(
    "look_alike",
    [f"l{CYRILLIC_E}arner09", "Iearner09", "leamer09", "learnerO9", "LEARNER09", "ｌｅａｒｎｅｒ０９"],
)
def test_look_alikes_share_a_skeleton(look_alike):
    assert username_skeleton(look_alike) == username_skeleton("learner09")


@pytest.mark.parametrize("different", ["learner08", "learner9", "grace", "learner09x", "léarner09"])
def test_different_names_keep_different_skeletons(different):
    assert username_skeleton(different) != username_skeleton("learner09")


def test_every_ascii_digit_and_letter_keeps_its_own_skeleton_in_lower_case():
    # Sequential names (learner1, learner2, ...) must never collide with each other.
    skeletons = {username_skeleton(c) for c in "abcdefghijklnopqrstuvwxyz23456789"}
    assert len(skeletons) == 33


def _register(username, number=1):
    return APIClient().post(
        "/api/auth/register/",
        {"username": username, "email": f"u{number}@example.com", "password": PASSWORD},
        format="json",
        REMOTE_ADDR=f"10.1.0.{number}",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Learner09", "A user with that username already exists."),
        ("learner0９", "A user with that username already exists."),
        (f"l{CYRILLIC_E}arner09", "That username looks like an existing one. Choose another."),
        ("leamer09", "That username looks like an existing one. Choose another."),
    ],
)
def test_registration_refuses_a_name_equal_or_confusable_with_an_existing_one(name, message):
    assert _register("learner09").status_code == 201
    response = _register(name, number=2)
    assert response.status_code == 400
    assert response.json()["fields"] == {"username": [message]}
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_registration_stores_the_keys_and_the_name_in_nfkc():
    assert _register("ｇｒａｃｅ").status_code == 201
    user = User.objects.get()
    assert (user.username, user.username_key, user.username_skeleton) == ("grace", "grace", "grace")


@pytest.mark.django_db
@pytest.mark.parametrize("spelling", ["learner09", "LEARNER09", " learner09 ", "ｌｅａｒｎｅｒ０９"])
def test_login_finds_the_account_by_its_key(spelling):
    user_create(username="Learner09")
    response = APIClient().post(
        "/api/auth/token/", {"username": spelling, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200


@pytest.mark.django_db
def test_a_look_alike_is_not_a_login():
    user_create(username="learner09")
    response = APIClient().post(
        "/api/auth/token/", {"username": f"l{CYRILLIC_E}arner09", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 401


@pytest.mark.django_db
def test_the_unique_indexes_refuse_what_skips_the_check():
    user_create(username="learner09")
    for name in ("LEARNER09", f"l{CYRILLIC_E}arner09"):
        with pytest.raises(IntegrityError):
            User.objects.create_user(name, f"{uuid.uuid4().hex}@example.com", PASSWORD)


@pytest.mark.django_db
def test_renaming_a_user_keeps_its_keys_in_step():
    user = user_create(username="grace")
    user.username = "Grace-Hopper"
    user.save(update_fields=["username"])
    user.refresh_from_db()
    assert user.username_key == "grace-hopper" and user.username_skeleton == username_skeleton("Grace-Hopper")


@pytest.mark.django_db
def test_the_admin_forms_refuse_a_confusable_username():
    admin_user = user_create(username="root", is_staff=True, is_superuser=True)
    user_create(username="learner09")
    client = Client()
    client.force_login(admin_user)
    added = client.post(
        "/admin/accounts/user/add/",
        {"username": f"l{CYRILLIC_E}arner09", "usable_password": "false", "password1": "", "password2": ""},
    )
    assert added.status_code == 200
    assert "That username looks like an existing one" in added.content.decode()
    grace = user_create(username="grace")
    changed = client.post(
        f"/admin/accounts/user/{grace.pk}/change/",
        {
            "username": "Learner09",
            "email": grace.email,
            "time_zone": "UTC",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "is_active": "on",
        },
    )
    assert changed.status_code == 200
    assert "A user with that username already exists." in changed.content.decode()
    assert User.objects.filter(username_key="learner09").count() == 1


@pytest.mark.django_db
def test_createsuperuser_says_a_name_taken_in_another_case_is_taken():
    user_create(username="admin")
    with pytest.raises(CommandError, match="already taken"):
        from django.core.management import call_command

        call_command("createsuperuser", "--no-input", "--username", "ADMIN", "--email", "a@example.com")


# The migration that fills the keys of existing accounts


def _editor(database):
    return SimpleNamespace(connection=SimpleNamespace(database=database))


def test_the_migration_fills_the_keys_of_existing_accounts(local_db):
    users = local_db.db[MIGRATION.USERS]
    users.insert_many([{"username": "Ada"}, {"username": "grace"}])
    MIGRATION.check_usernames(None, _editor(local_db.db))
    MIGRATION.fill_username_fields(None, _editor(local_db.db))
    stored = {user["username"]: user for user in users.find()}
    for name in ("Ada", "grace"):
        assert {
            field: stored[name][field] for field in ("username_key", "username_skeleton")
        } == username_fields(name)


def test_the_migration_stops_on_colliding_accounts_naming_them_and_renaming_nothing(local_db):
    users = local_db.db[MIGRATION.USERS]
    users.insert_many(
        [
            {"username": "Ada"},
            {"username": "ada"},
            {"username": "learner09"},
            {"username": f"l{CYRILLIC_E}arner09"},
        ]
    )
    before = list(users.find())
    with pytest.raises(CommandError) as stopped:
        MIGRATION.check_usernames(None, _editor(local_db.db))
    message = str(stopped.value)
    assert "stopped before changing anything" in message
    assert "'Ada'" in message and "'ada'" in message and "the same name" in message
    assert f"'l{CYRILLIC_E}arner09'" in message and "names that look the same" in message
    assert all(str(user["_id"]) in message for user in before)
    assert list(users.find()) == before


@pytest.mark.slow
@pytest.mark.embedded_only("runs migrate in subprocesses against the embedded local server")
def test_migrate_stops_on_colliding_accounts_then_completes_once_renamed(local_server):
    database = f"test_migrate_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studymaster.settings.dev",
        "MONGODB_URI": local_server.uri(),
        "MONGODB_DB_NAME": database,
    }

    def migrate(*target):
        return subprocess.run(
            [sys.executable, "manage.py", "migrate", *target, "--no-input", "-v", "0"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    from pymongo import MongoClient

    client = MongoClient(local_server.uri())
    try:
        # Everything, then accounts back to before the keys: as a database that predates them.
        assert migrate().returncode == 0
        assert migrate("accounts", "0005").returncode == 0
        users = client[database][MIGRATION.USERS]
        users.insert_many([{"username": "Learner09"}, {"username": "learner09"}])
        stopped = migrate()
        assert stopped.returncode == 1
        assert "CommandError: accounts.0006 stopped before changing anything" in stopped.stderr
        assert "Traceback" not in stopped.stderr
        assert sorted(user["username"] for user in users.find()) == ["Learner09", "learner09"]
        assert all("username_key" not in user for user in users.find())

        users.update_one({"username": "Learner09"}, {"$set": {"username": "learner09-old"}})
        completed = migrate()
        assert completed.returncode == 0, completed.stderr
        assert {user["username_key"] for user in users.find()} == {"learner09", "learner09-old"}
        indexes = users.index_information()
        assert any(
            index.get("unique") and index["key"] == [("username_key", 1)] for index in indexes.values()
        )
        assert any(
            index.get("unique") and index["key"] == [("username_skeleton", 1)] for index in indexes.values()
        )
    finally:
        client.drop_database(database)
        client.close()
