"""Classification of database errors against real Atlas replies, and their HTTP answers."""

import json
import logging
from pathlib import Path

import pymongo.errors
import pytest
from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    ConfigurationError,
    DuplicateKeyError,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
    WriteConcernError,
)

from studymaster.errors import classify, command_error, database_error_cause, http_problem

SAMPLES = json.loads((Path(__file__).parent / "data" / "atlas-error-samples.json").read_text())

# The sample file's class names -> our kinds, and the HTTP status each kind answers with.
KIND_OF_SAMPLE_CLASS = {
    "quota": "quota",
    "authentication": "authentication",
    "authorization": "authorization",
    "unsupported_command": "unsupported",
    "limit_collections": "limit",
    "transient": "transient",
    "dns_srv": "dns",
    "ip_access_list": "access_list",
    "tls": "tls",
    "pool_exhausted": "pool_exhausted",
}
STATUS_OF_KIND = {
    "quota": 507,
    "limit": 507,
    "authentication": 500,
    "authorization": 500,
    "unsupported": 500,
    "transient": 503,
    "dns": 503,
    "access_list": 503,
    "tls": 503,
    "pool_exhausted": 503,
}


def _server_error(reply: dict) -> OperationFailure:
    return OperationFailure(reply["errmsg"], reply["code"], reply)


def _driver_error(sample: dict) -> Exception:
    module, _, name = sample["exception"].rpartition(".")
    assert module == "pymongo.errors"
    return getattr(pymongo.errors, name)(sample["message"])


SAMPLE_ERRORS = [
    pytest.param(
        sample["class"], _server_error(sample["reply"]), id=f"reply-{sample['reply']['errmsg'][:40]}"
    )
    for sample in SAMPLES["server_replies"]
] + [
    pytest.param(sample["class"], _driver_error(sample), id=f"driver-{sample['class']}")
    for sample in SAMPLES["driver_errors"]
]


def test_every_sample_in_the_file_is_tested():
    assert len(SAMPLE_ERRORS) == len(SAMPLES["server_replies"]) + len(SAMPLES["driver_errors"]) >= 12
    assert {sample.values[0] for sample in SAMPLE_ERRORS} <= set(KIND_OF_SAMPLE_CLASS)


@pytest.mark.parametrize(("sample_class", "exc"), SAMPLE_ERRORS)
def test_each_atlas_sample_gets_its_class_and_http_status(sample_class, exc):
    problem = classify(exc)
    assert problem.kind == KIND_OF_SAMPLE_CLASS[sample_class]
    assert http_problem(exc).status == STATUS_OF_KIND[problem.kind]


def test_code_8000_is_told_apart_by_its_message():
    kinds = [
        classify(_server_error(sample["reply"])).kind
        for sample in SAMPLES["server_replies"]
        if sample["reply"]["code"] == 8000
    ]
    assert kinds == ["quota", "authentication", "authorization", "unsupported", "limit"]


def test_code_8000_without_a_known_text_is_named_as_atlas_error():
    exc = OperationFailure("Failing command via 'failCommand' failpoint", 8000, {"code": 8000})
    assert classify(exc).kind == "atlas"
    assert http_problem(exc).status == 500


def test_quota_message_tells_what_to_do_and_keeps_the_figures():
    problem = classify(_server_error(SAMPLES["server_replies"][0]["reply"]))
    assert "513 MB of 512 MB" in problem.message
    assert "M10" in problem.message


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (WaitQueueTimeoutError("Timed out while checking out a connection"), "pool_exhausted"),
        (NetworkTimeout("127.0.0.1:27017: timed out"), "timeout"),
        (ExecutionTimeout("operation exceeded time limit", 50), "timeout"),
        (AutoReconnect("connection closed"), "transient"),
        (OperationFailure("interrupted at shutdown", 11600), "transient"),
        (OperationFailure("primary stepped down", 189), "transient"),
        (OperationFailure("odd", 2, {"errorLabels": ["RetryableWriteError"]}), "transient"),
        (WriteConcernError("waiting for replication timed out", 64), "timeout"),
        (
            ServerSelectionTimeoutError("127.0.0.1:1: [Errno 111] Connection refused, Timeout: 5s"),
            "unreachable",
        ),
        (ConfigurationError("Unknown option foo"), "configuration"),
        (OperationFailure("Authentication failed.", 18), "authentication"),
        (OperationFailure("not authorized on admin to execute command", 13), "authorization"),
    ],
)
def test_driver_and_server_errors_by_type_and_code(exc, kind):
    assert classify(exc).kind == kind


def test_messages_never_carry_credentials():
    exc = ServerSelectionTimeoutError(
        "mongodb+srv://app:s3cret-pw@cluster0.example.mongodb.net/: connection closed"
    )
    problem = classify(exc)
    assert "s3cret-pw" not in problem.message
    assert "access" in problem.message.lower()


def test_command_error_exits_2_with_the_classified_message():
    error = command_error(_server_error(SAMPLES["server_replies"][0]["reply"]))
    assert isinstance(error, CommandError)
    assert error.returncode == 2
    assert str(error).startswith("quota: ")


def test_http_answer_is_generic_and_the_log_has_the_detail(caplog):
    exc = _server_error(SAMPLES["server_replies"][2]["reply"])
    with caplog.at_level(logging.ERROR, logger="studymaster.database"):
        problem = http_problem(exc)
    assert problem.status == 500
    assert "accounts_user" not in problem.message
    assert "accounts_user" in caplog.text


def test_unavailable_answers_carry_retry_after():
    assert http_problem(AutoReconnect("boom")).headers == {"Retry-After": "5"}
    assert http_problem(OperationFailure("bad auth : authentication failed", 8000)).headers == {}


def test_the_orm_wrapped_error_is_unwrapped_but_integrity_errors_are_left_alone():
    cause = AutoReconnect("connection reset")
    wrapped = DatabaseError()
    wrapped.__cause__ = cause
    assert database_error_cause(wrapped) is cause
    integrity = IntegrityError()
    integrity.__cause__ = DuplicateKeyError("E11000")
    assert database_error_cause(integrity) is None
    assert database_error_cause(ValueError("x")) is None


def test_a_bulk_write_is_classified_by_its_first_write_error():
    """The ORM inserts with insert_many: Atlas's quota refusal arrives inside a BulkWriteError."""
    quota = SAMPLES["server_replies"][0]["reply"]
    exc = BulkWriteError(
        {"writeErrors": [{"index": 0, "code": 8000, "errmsg": quota["errmsg"]}], "nInserted": 0}
    )
    assert classify(exc).kind == "quota"
    assert http_problem(exc).status == 507


def test_a_bulk_write_is_classified_by_its_write_concern_error():
    exc = BulkWriteError(
        {
            "writeErrors": [],
            "writeConcernErrors": [{"code": 64, "errmsg": "waiting for replication timed out"}],
        }
    )
    assert classify(exc).kind == "timeout"


def test_a_bulk_duplicate_key_stays_a_plain_error():
    exc = BulkWriteError({"writeErrors": [{"index": 0, "code": 11000, "errmsg": "E11000 duplicate key"}]})
    assert classify(exc).kind == "error"


@pytest.mark.parametrize(
    ("errmsg", "code", "expected"),
    [
        (
            "user is not allowed to do action [insert] on [studymaster_rehearsal.accounts_user]",
            8000,
            "no right on database 'studymaster_rehearsal'",
        ),
        (
            "not authorized on studymastr to execute command (action: find)",
            13,
            "no right on database 'studymastr'",
        ),
        ("not authorized on admin to execute command { serverStatus: 1 }", 13, "a server-wide right"),
        ("not authorized on cluster to execute command (action: serverStatus)", 13, "a server-wide right"),
    ],
)
def test_an_authorization_error_names_the_database_that_lacks_the_right(errmsg, code, expected):
    """Issue 11, item 8: not "the application's database", which the user may well have."""
    problem = classify(OperationFailure(errmsg, code, {"ok": 0, "errmsg": errmsg, "code": code}))
    assert problem.kind == "authorization"
    assert expected in problem.message
    assert "application's database" not in problem.message


def test_the_dns_advice_names_where_the_uri_came_from():
    exc = ConfigurationError("The DNS query name does not exist: _mongodb._tcp.cluster0.abcde.invalid.")
    assert "host name in ATLAS_MONGODB_URI" in classify(exc, uri_name="ATLAS_MONGODB_URI").message
    assert "host name in MONGODB_URI" in classify(exc).message
