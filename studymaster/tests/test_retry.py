"""Retries of what the driver does not retry, proven with failpoints on the embedded server."""

import pytest
from prometheus_client import REGISTRY
from pymongo.errors import AutoReconnect, NotPrimaryError, OperationFailure, WriteConcernError

from studymaster.retry import retry_guarded, retry_idempotent
from tests.fault_injection import POLLING, FailPoints

pytestmark = [pytest.mark.faults, pytest.mark.embedded_only("arms failCommand failpoints")]

APP = "studymaster-retry-test"


def _retries(operation: str) -> float:
    return REGISTRY.get_sample_value("studymaster_mongodb_retries_total", {"operation": operation}) or 0.0


@pytest.fixture
def target(local_server, local_db):
    """The test's collection through a client named APP, and failpoints aimed at APP only."""
    client = local_server.client(appName=APP, **POLLING)
    failpoints = FailPoints(local_server.uri(), app_name=APP)
    failpoints.off()
    try:
        yield client[local_db.name]["items"], failpoints
    finally:
        failpoints.close()
        client.close()


@pytest.fixture
def standalone_like(local_server, local_db):
    """A client that, like any client of a standalone server, gets no retries from the driver."""
    client = local_server.client(appName=APP, retryWrites=False, retryReads=False, **POLLING)
    failpoints = FailPoints(local_server.uri(), app_name=APP)
    failpoints.off()
    try:
        yield client[local_db.name]["items"], failpoints
    finally:
        failpoints.close()
        client.close()


def test_update_many_is_retried_after_a_shutdown_error(target):
    items, failpoints = target
    items.insert_many([{"n": n, "done": False} for n in range(5)])

    @retry_idempotent(operation="test_update_many")
    def mark_done():
        return items.update_many({}, {"$set": {"done": True}}).modified_count

    before = _retries("test_update_many")
    failpoints.fail("update", error_code=91)
    mark_done()
    assert items.count_documents({"done": True}) == 5
    assert _retries("test_update_many") == before + 1


def test_delete_many_is_retried_after_interrupted_at_shutdown(target):
    items, failpoints = target
    items.insert_many([{"n": n} for n in range(4)])
    failpoints.fail("delete", error_code=11600)
    retry_idempotent(lambda: items.delete_many({"n": {"$lt": 2}}), operation="test_delete_many")()
    assert sorted(doc["n"] for doc in items.find()) == [2, 3]


def test_a_second_transient_failure_is_retried_after_the_driver_gave_up(target):
    items, failpoints = target
    items.insert_one({"n": 1})
    before = _retries("test_find")
    failpoints.fail("find", times=2, close_connection=True)  # the driver's attempt and its one retry
    found = retry_idempotent(lambda: list(items.find({}, {"_id": 0})), operation="test_find")()
    assert found == [{"n": 1}]
    assert _retries("test_find") == before + 1


def test_a_failed_get_more_restarts_the_whole_read(target):
    items, failpoints = target
    items.insert_many([{"n": n} for n in range(7)])
    failpoints.fail("getMore", error_code=189)

    @retry_idempotent(operation="test_get_more")
    def read_all():
        return [doc["n"] for doc in items.find({}, batch_size=2).sort("n", 1)]

    assert read_all() == list(range(7))


def test_without_driver_retries_a_single_failure_is_retried(standalone_like):
    items, failpoints = standalone_like
    failpoints.fail("insert", error_code=189)
    retry_idempotent(lambda: items.update_one({"_id": "x"}, {"$set": {"v": 1}}, upsert=True))()
    assert items.count_documents({}) == 1


def test_retries_are_bounded(standalone_like):
    items, failpoints = standalone_like
    before = _retries("test_bounded")
    failpoints.fail("find", times=10, error_code=91)
    with pytest.raises(NotPrimaryError) as raised:
        retry_idempotent(lambda: items.find_one({}), operation="test_bounded", attempts=3)()
    assert raised.value.details["code"] == 91
    assert _retries("test_bounded") == before + 2


@pytest.mark.parametrize("code", [8000, 13, 11000])
def test_errors_that_are_not_transient_are_not_retried(standalone_like, code):
    items, failpoints = standalone_like
    calls = []

    @retry_idempotent(operation="test_not_transient")
    def read():
        calls.append(1)
        return items.find_one({})

    failpoints.fail("find", error_code=code)
    with pytest.raises(OperationFailure):
        read()
    assert calls == [1]


def test_guarded_write_is_not_repeated_when_the_first_attempt_applied(standalone_like):
    """A writeConcernError: the insert applied, the reply says it failed."""
    items, failpoints = standalone_like
    failpoints.fail(
        "insert",
        write_concern_error={"code": 91, "errmsg": "Replication is being shut down"},
        error_labels=["RetryableWriteError"],
    )
    result = retry_guarded(
        lambda: items.insert_one({"key": "k1"}).inserted_id,
        applied=lambda: (items.find_one({"key": "k1"}) or {}).get("_id"),
        operation="test_guarded",
    )
    assert result is not None
    assert items.count_documents({"key": "k1"}) == 1


def test_guarded_write_is_retried_when_the_first_attempt_did_not_apply(standalone_like):
    items, failpoints = standalone_like
    failpoints.fail("insert", close_connection=True)
    checks = []

    def applied():
        checks.append(1)
        return (items.find_one({"key": "k2"}) or {}).get("_id")

    retry_guarded(
        lambda: items.insert_one({"key": "k2"}).inserted_id, applied=applied, operation="test_guarded"
    )
    assert checks == [1]
    assert items.count_documents({"key": "k2"}) == 1


def test_write_concern_error_is_classified_transient_and_retried(standalone_like):
    items, failpoints = standalone_like
    failpoints.fail("update", write_concern_error={"code": 91, "errmsg": "Replication is being shut down"})
    with pytest.raises(WriteConcernError):
        items.update_one({"_id": 1}, {"$set": {"v": 1}}, upsert=True)
    failpoints.fail("update", write_concern_error={"code": 91, "errmsg": "Replication is being shut down"})
    retry_idempotent(lambda: items.update_one({"_id": 1}, {"$set": {"v": 2}}, upsert=True))()
    assert items.find_one({"_id": 1})["v"] == 2


def test_a_plain_exception_passes_straight_through():
    calls = []

    @retry_idempotent
    def broken():
        calls.append(1)
        raise AutoReconnect("always") if len(calls) > 5 else ValueError("not a database error")

    with pytest.raises(ValueError):
        broken()
    assert calls == [1]
