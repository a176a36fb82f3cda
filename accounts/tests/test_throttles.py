"""Throttles: login (API and admin), registration, password checks, profile changes and study
session writes; limits, keys, Retry-After, lifting them early, and counts shared across
processes."""

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from pymongo import MongoClient, ReturnDocument, monitoring
from rest_framework.test import APIClient

from accounts.tests.factories import PASSWORD, client_for, user_create
from accounts.throttles import throttle_lift
from studymaster import ratelimit
from studymaster.mongo import client_options
from studymaster.ratelimit import FixedWindowCounter, ensure_indexes, parse_rate, window_key_id

WINDOW_START = 1_800_000_000  # a multiple of 60: minute windows start here
NOW = WINDOW_START + 15


@pytest.fixture
def frozen_clock(monkeypatch):
    """Pin the throttle's clock inside one window, so no test straddles a window boundary."""
    monkeypatch.setattr(ratelimit.time, "time", lambda: NOW)


@pytest.fixture
def low_rates(settings, frozen_clock):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            "login": "3/min",
            "register": "2/min",
            "password": "2/min",
            "profile": "3/min",
            "study_session": "2/min",
        },
    }


def _login(username, address="10.0.0.1", **extra):
    return APIClient().post(
        "/api/auth/token/",
        {"username": username, "password": PASSWORD},
        format="json",
        REMOTE_ADDR=address,
        **extra,
    )


def _assert_throttled(response):
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "throttled" and "available in 45 seconds" in body["message"]
    assert response["Retry-After"] == "45"


@pytest.mark.django_db
def test_registration_is_throttled_per_address_with_retry_after(low_rates):
    def register(number, address="10.0.0.1"):
        return APIClient().post(
            "/api/auth/register/",
            {"username": f"u{number}", "email": f"u{number}@example.com", "password": PASSWORD},
            format="json",
            REMOTE_ADDR=address,
        )

    assert [register(n).status_code for n in range(2)] == [201, 201]
    _assert_throttled(register(3))
    assert register(4, address="10.0.0.2").status_code == 201


@pytest.mark.django_db
def test_login_limit_plus_one_is_refused_even_with_the_right_password(low_rates):
    user_create(username="ada")
    assert [_login("ada").status_code for _ in range(3)] == [200, 200, 200]
    _assert_throttled(_login("ada"))


@pytest.mark.django_db
def test_login_counts_every_username_against_the_address(low_rates):
    for name in ("ada", "grace", "alan"):
        user_create(username=name)
        assert _login(name).status_code == 200
    user_create(username="edsger")
    _assert_throttled(_login("edsger"))
    # Another client address may still log in as that user.
    assert _login("edsger", address="10.0.0.9").status_code == 200


@pytest.mark.django_db
def test_login_counts_one_username_across_addresses(low_rates):
    user_create(username="ada")
    for number in range(3):
        assert _login("ada", address=f"10.0.1.{number}").status_code == 200
    _assert_throttled(_login("ADA", address="10.0.1.99"))  # the username key ignores case
    user_create(username="grace")
    assert _login("grace", address="10.0.1.99").status_code == 200


@pytest.mark.django_db
def test_a_forged_forwarded_for_header_does_not_reset_the_count(low_rates):
    for number in range(3):
        _login(f"nobody{number}", HTTP_X_FORWARDED_FOR=f"192.0.2.{number}")
    _assert_throttled(_login("nobody9", HTTP_X_FORWARDED_FOR="192.0.2.200"))


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_forwarded_address_is_the_key(settings, low_rates):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    for number in range(3):
        _login(f"nobody{number}", HTTP_X_FORWARDED_FOR="198.51.100.7")
    _assert_throttled(_login("nobody9", HTTP_X_FORWARDED_FOR="198.51.100.7"))
    assert _login("nobody9", HTTP_X_FORWARDED_FOR="198.51.100.8").status_code == 401


@pytest.mark.django_db
def test_a_new_window_starts_a_new_count(settings, monkeypatch):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"login": "1/min"}}
    monkeypatch.setattr(ratelimit.time, "time", lambda: NOW)
    assert _login("nobody").status_code == 401
    assert _login("nobody").status_code == 429
    monkeypatch.setattr(ratelimit.time, "time", lambda: NOW + 60)
    assert _login("nobody").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("spelling", [" ada", "ada ", "ADA", "Ada", "ａｄａ", "\u00a0ada"])
def test_the_username_key_is_the_one_authentication_uses(low_rates, spelling):
    user_create(username="ada")
    assert _login(spelling).status_code == 200  # authentication finds the account ...
    for number in range(2):
        assert _login("ada", address=f"10.0.3.{number}").status_code == 200
    # ... and the throttle counted that spelling as the same username.
    _assert_throttled(_login("ada", address="10.0.3.99"))
    _assert_throttled(_login(spelling, address="10.0.3.98"))


@pytest.mark.django_db
def test_a_username_a_json_string_cannot_encode_is_counted_not_a_500(low_rates):
    response = APIClient().post(
        "/api/auth/token/",
        b'{"username": "ada\\ud800", "password": "x"}',
        content_type="application/json",
        REMOTE_ADDR="10.0.0.1",
    )
    assert response.status_code in (400, 401)


# The admin's login


def _admin_login(username, password=PASSWORD, address="10.0.0.1"):
    return Client().post(
        "/admin/login/?next=/admin/", {"username": username, "password": password}, REMOTE_ADDR=address
    )


@pytest.fixture
def staff():
    return user_create(username="kim", is_staff=True, is_superuser=True)


@pytest.mark.django_db
def test_the_admin_login_is_throttled_by_username_even_with_the_right_password(low_rates, staff):
    for number in range(3):
        assert _admin_login("kim", "wrong-password", address=f"10.0.4.{number}").status_code == 200
    refused = _admin_login("KIM", address="10.0.4.99")  # the right password, another address
    assert refused.status_code == 429
    assert refused["Retry-After"] == "45"
    page = refused.content.decode()
    assert "Too many sign-in attempts" in page and "Try again in 45 seconds" in page
    assert "_auth_user_id" not in refused.wsgi_request.session  # not logged in
    # Looking at the page is not an attempt.
    assert Client().get("/admin/login/", REMOTE_ADDR="10.0.4.99").status_code == 200


@pytest.mark.django_db
def test_the_admin_login_is_throttled_by_address(low_rates, staff):
    for name in ("a", "b", "c"):
        assert _admin_login(name, "wrong-password").status_code == 200
    assert _admin_login("kim").status_code == 429
    response = _admin_login("kim", address="10.0.0.2")
    assert response.status_code == 302 and response["Location"] == "/admin/"


@pytest.mark.django_db
def test_the_admin_and_the_api_login_share_their_counts(low_rates, staff):
    assert _login("kim", address="10.0.5.1").status_code == 200
    assert _admin_login("kim", "wrong-password", address="10.0.5.2").status_code == 200
    assert _login("kim", address="10.0.5.3").status_code == 200
    assert _admin_login("kim", address="10.0.5.4").status_code == 429
    _assert_throttled(_login("kim", address="10.0.5.5"))


# Password checks and profile changes, per account


@pytest.mark.django_db
def test_password_checks_are_throttled_per_account_across_endpoints(low_rates):
    user = user_create()
    client, _ = client_for(user)
    wrong = {"old_password": "wrong-password", "new_password": "another-long-passphrase"}
    assert client.post("/api/auth/password/", wrong, format="json", REMOTE_ADDR="10.0.6.1").status_code == 400
    assert (
        client.delete("/api/me/", {"password": "wrong"}, format="json", REMOTE_ADDR="10.0.6.2").status_code
        == 400
    )
    # The right password, from a third address: the account's checks are used up.
    right = {"old_password": PASSWORD, "new_password": "another-long-passphrase"}
    _assert_throttled(client.post("/api/auth/password/", right, format="json", REMOTE_ADDR="10.0.6.3"))
    _assert_throttled(client.delete("/api/me/", {"password": PASSWORD}, format="json"))
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    # Another account is not affected.
    other, _ = client_for(user_create())
    assert other.delete("/api/me/", {"password": PASSWORD}, format="json").status_code == 204


@pytest.mark.django_db
def test_an_email_change_counts_as_a_password_check_and_reading_counts_nothing(low_rates):
    user = user_create()
    client, _ = client_for(user)
    for address in ("new1@example.com", "new2@example.com"):
        payload = {"email": address, "current_password": "wrong-password"}
        assert client.patch("/api/me/", payload, format="json").status_code == 400
    response = client.patch(
        "/api/me/", {"email": "new3@example.com", "current_password": PASSWORD}, format="json"
    )
    _assert_throttled(response)
    assert all(client.get("/api/me/").status_code == 200 for _ in range(5))


@pytest.mark.django_db
def test_profile_changes_are_throttled_per_account(low_rates):
    user_create(username="grace", email="grace@example.com")
    user = user_create()
    client, _ = client_for(user)
    for number in range(3):
        assert client.patch("/api/me/", {"display_name": f"Ada {number}"}, format="json").status_code == 200
    _assert_throttled(client.patch("/api/me/", {"display_name": "Ada 4"}, format="json"))
    user.refresh_from_db()
    assert user.display_name == "Ada 2"


# Lifting a throttle early


@pytest.mark.django_db
def test_throttle_lift_frees_a_username_and_its_account(low_rates, staff):
    client, _ = client_for(staff)
    for number in range(4):
        _admin_login("kim", "wrong-password", address=f"10.0.7.{number}")
    for _ in range(3):
        client.delete("/api/me/", {"password": "wrong"}, format="json")
    assert _admin_login("kim", address="10.0.7.99").status_code == 429
    out = io.StringIO()
    call_command("throttle_lift", "--username", " KIM", stdout=out)
    assert out.getvalue() == "Lifted 2 throttle counters of username ' KIM'.\n"
    assert _admin_login("kim", address="10.0.7.99").status_code == 302
    assert (
        client.post(
            "/api/auth/password/",
            {"old_password": PASSWORD, "new_password": "another-long-passphrase"},
            format="json",
        ).status_code
        == 200
    )
    out = io.StringIO()
    call_command("throttle_lift", "--username", "nobody", stdout=out)
    assert out.getvalue() == "Nothing to lift: no throttle counts for username 'nobody'.\n"


@pytest.mark.django_db
def test_throttle_lift_frees_an_accounts_study_session_writes(low_rates, staff):
    client, _ = client_for(staff)

    def log(hours_ago: int):
        started = timezone.now() - timedelta(hours=hours_ago)
        body = {"subject": "Maths", "duration_minutes": 5, "started_at": started.isoformat()}
        return client.post("/api/sessions/", body, format="json").status_code

    assert [log(1), log(2), log(3)] == [201, 201, 429]
    assert throttle_lift(username=staff.username) == 1
    assert log(3) == 201


@pytest.mark.django_db
def test_throttle_lift_frees_an_address(low_rates, staff):
    for name in ("a", "b", "c", "d"):
        _login(name, address="203.0.113.7")
    _assert_throttled(_login("kim", address="203.0.113.7"))
    assert throttle_lift(address="203.0.113.7") == 1
    assert _login("kim", address="203.0.113.7").status_code == 200
    assert _login("grace", address="10.9.9.9").status_code == 401  # others were never affected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("arguments", "message"),
    [([], "name a --username or an --address to lift"), (["--address", "10.0.0"], "is not an IP address")],
)
def test_throttle_lift_refuses_what_it_cannot_lift(arguments, message):
    with pytest.raises(CommandError, match=message) as refused:
        call_command("throttle_lift", *arguments)
    assert refused.value.returncode == 1


def test_the_default_rates_never_bother_a_person():
    from django.conf import settings

    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    for scope in ("login", "register"):
        rate = parse_rate(rates[scope])
        assert rate.limit * 60 / rate.window_seconds >= 10
    # An account's own password and profile: a person's handful of changes an hour.
    for scope in ("password", "profile"):
        assert parse_rate(rates[scope]).limit >= 10
    # A person logs or deletes a study session now and then, never 60 in a minute.
    study_session = parse_rate(rates["study_session"])
    assert study_session.limit * 60 / study_session.window_seconds >= 60


# The store itself


@pytest.fixture
def two_processes(local_db):
    """Two independent MongoClients on one database, as two app processes would have."""
    ensure_indexes(local_db.db["counters"])
    other = MongoClient(local_db.uri, **client_options(local_db.uri))
    yield (
        FixedWindowCounter(local_db.db["counters"]),
        FixedWindowCounter(other[local_db.name]["counters"]),
    )
    other.close()


def test_counts_hold_across_two_clients(two_processes):
    first, second = two_processes
    counts = [counter.hit("login:x", window_seconds=60, now=NOW).count for counter in (first, second) * 3]
    assert counts == [1, 2, 3, 4, 5, 6]
    assert second.hit("login:y", window_seconds=60, now=NOW).count == 1
    assert first.hit("login:x", window_seconds=60, now=NOW + 60).count == 1


def test_concurrent_hits_lose_no_count(two_processes):
    first, second = two_processes
    barrier = threading.Barrier(16)

    def hit(number):
        barrier.wait()
        counter = first if number % 2 else second
        return counter.hit("register:z", window_seconds=60, now=NOW).count

    with ThreadPoolExecutor(16) as pool:
        counts = sorted(pool.map(hit, range(16)))
    # No hit is lost, and none is under-reported (on MongoDB the counts are exactly 1..16; the
    # embedded server's racing-upsert defect can make two hits both report a later total).
    assert max(counts) == 16
    assert all(count >= rank for rank, count in enumerate(counts, 1))
    assert first.collection.find_one({"key": f"register:z:60:{WINDOW_START}"})["count"] == 16


def test_the_store_keeps_json_values_that_expire(two_processes, local_db):
    first, _ = two_processes
    hit = first.hit("login:x", window_seconds=60, now=NOW)
    assert hit.retry_after_seconds == 45
    document = local_db.db["counters"].find_one({"key": f"login:x:60:{WINDOW_START}"})
    assert document["count"] == 1
    assert document["expires_at"] == datetime.fromtimestamp(WINDOW_START + 60, tz=UTC).replace(tzinfo=None)
    ttl = local_db.db["counters"].index_information()["expires_at_ttl"]
    assert ttl["expireAfterSeconds"] == 0


class _FindAndModifies(monitoring.CommandListener):
    def __init__(self):
        self.commands = []

    def started(self, event):
        if event.command_name == "findAndModify":
            self.commands.append(event.command)

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def test_a_hit_reads_one_counter_however_many_windows_are_live(local_db):
    """The hit's own command, explained: the _id index serves it (the partial unique index on
    ``key`` would not), so the documents it examines do not grow with the live counters."""
    collection = local_db.db["counters"]
    ensure_indexes(collection)
    warm = FixedWindowCounter(collection)
    for number in range(200):
        warm.hit(f"study_session:user:{number}", window_seconds=60, now=NOW)
    listener = _FindAndModifies()
    client = MongoClient(local_db.uri, event_listeners=[listener], **client_options(local_db.uri))
    try:
        counter = FixedWindowCounter(client[local_db.name]["counters"])
        assert counter.hit("study_session:user:7", window_seconds=60, now=NOW).count == 2
        (command,) = listener.commands
        explain = {key: command[key] for key in ("findAndModify", "query", "update", "upsert", "new")}
        stats = client[local_db.name].command("explain", explain, verbosity="executionStats")
    finally:
        client.close()
    assert command["query"] == {"_id": window_key_id(f"study_session:user:7:60:{WINDOW_START}")}
    assert stats["executionStats"]["totalDocsExamined"] <= 1


def test_a_window_counted_before_the_upgrade_keeps_its_count(local_db):
    """A counter written by the previous version (a random _id) holds its window's unique key
    until the window ends: the hit adds to it instead of starting the count again."""
    collection = local_db.db["counters"]
    ensure_indexes(collection)
    window_key = f"login:address:abc:60:{WINDOW_START}"
    expires = datetime.fromtimestamp(WINDOW_START + 60, tz=UTC)
    collection.insert_one({"key": window_key, "count": 3, "expires_at": expires})
    hit = FixedWindowCounter(collection).hit("login:address:abc", window_seconds=60, now=NOW)
    assert hit.count == 4
    assert collection.count_documents({"key": window_key}) == 1


@pytest.mark.parametrize(
    ("text", "limit", "window"),
    [("20/min", 20, 60), ("5/second", 5, 1), ("100/hour", 100, 3600), ("1000/day", 1000, 86400)],
)
def test_parse_rate(text, limit, window):
    assert parse_rate(text) == ratelimit.Rate(limit=limit, window_seconds=window)


@pytest.mark.parametrize("text", ["", "20", "0/min", "-1/min", "ten/min", "20/fortnight"])
def test_parse_rate_refuses_nonsense(text):
    with pytest.raises(ValueError, match="20/min"):
        parse_rate(text)


@pytest.mark.embedded_only("pins a SecantusDB defect; MongoDB always returns the upserted document")
def test_defect_racing_upserts_sometimes_return_no_document(local_db):
    """When this fails, SecantusDB is fixed and FixedWindowCounter's read-back may go."""
    collection = local_db.db["race"]
    ensure_indexes(collection)
    missing = 0
    for round_number in range(30):
        barrier = threading.Barrier(16)

        def upsert(_, key=f"k{round_number}", barrier=barrier):
            barrier.wait()
            return collection.find_one_and_update(
                {"key": key}, {"$inc": {"count": 1}}, upsert=True, return_document=ReturnDocument.AFTER
            )

        with ThreadPoolExecutor(16) as pool:
            missing += sum(document is None for document in pool.map(upsert, range(16)))
        # The increments themselves are never lost.
        assert collection.find_one({"key": f"k{round_number}"})["count"] == 16
        if missing:
            break
    assert missing > 0
