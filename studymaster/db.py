"""Transactions and the raw MongoDB operations the ORM cannot express, counted like the ORM's own.

The backend logs only the collection methods it uses itself (``aggregate``, ``insert_many``,
``update_many``...). Every raw call goes through :func:`mongo_call`, or tells
:func:`log_operation` of itself, so ``django_assert_max_num_queries`` counts every round trip
to the server.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from typing import TypeVar

import pymongo
from django.db import DEFAULT_DB_ALIAS, DatabaseError, IntegrityError, connections
from pymongo import UpdateMany
from pymongo.errors import ClientBulkWriteException, PyMongoError, WriteConcernError

T = TypeVar("T")
# with_transaction alone retries a transient failure for up to 120 s: past gunicorn's 30 s
# timeout, the worker would be killed mid-request. Bounded, the caller gets a timeout (503).
TRANSACTION_TIME_LIMIT_SECONDS = 20
USERS_PER_BATCH = 1000
DUPLICATE_KEY = 11000


def log_operation(description: str, *, started: float | None = None) -> None:
    """Record one raw PyMongo operation in Django's query log, as the ORM records its own.

    ``started`` (a ``time.monotonic()`` reading) gives the operation's duration; without it
    the operation is logged as taking no time. Does nothing unless queries are being logged.
    """
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.queries_logged:
        seconds = 0.0 if started is None else time.monotonic() - started
        connection.queries_log.append({"sql": description, "time": f"{seconds:.3f}"})


def application_database():
    """The application's database (``MONGODB_URI``, ``MONGODB_DB_NAME``) as a PyMongo Database,
    through Django's own connection: the ORM's client, pool and options."""
    return connections[DEFAULT_DB_ALIAS].database


def mongo_call(collection: str, method: str, *args, **kwargs):
    """Call ``method`` on the raw collection, inside the current transaction if there is one."""
    connection = connections[DEFAULT_DB_ALIAS]
    started = time.monotonic()
    try:
        return getattr(connection.database[collection], method)(*args, session=connection.session, **kwargs)
    finally:
        log_operation(f"db.{collection}.{method}(...)", started=started)


def namespace(collection: str) -> str:
    """``<database>.<collection>``: how a write of :func:`mongo_bulk_write` names its collection."""
    return f"{connections[DEFAULT_DB_ALIAS].database.name}.{collection}"


def mongo_bulk_write(operations: list, *, verbose: bool = False):
    """Send writes to several collections as ONE operation, in order, inside the current
    transaction if there is one: MongoDB 8.0's ``bulkWrite`` command (Atlas M0 runs 8.0).

    Each operation is a PyMongo ``InsertOne``/``UpdateOne``/``ReplaceOne``/``DeleteOne`` with
    ``namespace=namespace(collection)``. Raises Django's ``IntegrityError`` for a duplicate key,
    as the ORM does (its ``__cause__`` is PyMongo's ``ClientBulkWriteException``, whose
    ``write_errors`` name the index), ``WriteConcernError`` for a write concern error, and
    ``ClientBulkWriteException`` for another write error;
    being ordered, nothing after the failing write is attempted. A failure
    of the whole command (a write conflict in a transaction, a lost connection) is raised as
    itself: PyMongo wraps it in the exception's ``error``, where its labels are not seen, and a
    ``TransientTransactionError`` must reach ``with_transaction`` to be retried.
    With ``verbose``, the result holds each write's own result (``update_results``...).
    """
    connection = connections[DEFAULT_DB_ALIAS]
    connection.ensure_connection()
    started = time.monotonic()
    try:
        return connection.connection.bulk_write(
            operations, session=connection.session, ordered=True, verbose_results=verbose
        )
    except ClientBulkWriteException as exc:
        if isinstance(exc.error, PyMongoError):
            raise exc.error from exc
        if exc.write_errors and all(error.get("code") == DUPLICATE_KEY for error in exc.write_errors):
            raise IntegrityError(exc.write_errors[0].get("errmsg", "duplicate key")) from exc
        if not exc.write_errors and exc.write_concern_errors:
            # As a single write reports it, so that it is classified by its code (64: a timeout...).
            first = exc.write_concern_errors[0]
            raise WriteConcernError(first.get("errmsg", ""), first.get("code"), first) from exc
        raise
    finally:
        log_operation(f"client.bulk_write({len(operations)} writes)", started=started)


def model_document(instance) -> dict:
    """The document the ORM would insert for a model ``instance``: every concrete field, in the
    model's order, as the backend prepares it (dates as midnight datetimes...), by column."""
    connection = connections[DEFAULT_DB_ALIAS]
    return {
        field.column: field.get_db_prep_save(field.pre_save(instance, True), connection=connection)
        for field in instance._meta.concrete_fields
    }


def users_field_copy(database, *, users: str, collection: str, field: str, default) -> None:
    """Set ``field`` of every document of ``collection`` (a per-user collection, by ``user_id``)
    to the same field of its user in ``users`` (``default`` where the user has none).

    For data migrations: one ``update_many`` per user, sent in batches of a thousand.
    """
    updates = [
        UpdateMany({"user_id": user["_id"]}, {"$set": {field: user.get(field) or default}})
        for user in database[users].find({}, {field: 1})
    ]
    for start in range(0, len(updates), USERS_PER_BATCH):
        database[collection].bulk_write(updates[start : start + USERS_PER_BATCH], ordered=False)


def db_datetime(moment: datetime.datetime) -> datetime.datetime:
    """``moment`` as MongoDB keeps it: to the millisecond, so what is compared or answered
    before a write equals what a later read returns."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def db_date(day: datetime.date) -> datetime.datetime:
    """A DateField value as the backend stores it (a BSON datetime at midnight)."""
    return datetime.datetime.combine(day, datetime.time.min)


def in_transaction() -> bool:
    """Whether the current code runs inside :func:`run_in_transaction`."""
    return connections[DEFAULT_DB_ALIAS].session is not None


def run_in_transaction(work: Callable[[], T]) -> T:
    """Run ``work`` in one multi-document transaction and return its result.

    Every ORM and :func:`mongo_call` operation inside ``work`` joins the transaction.
    A write conflict with a concurrent transaction (TransientTransactionError) reruns
    ``work`` from the start, so ``work`` must only write to the database. Any other
    exception aborts the transaction and propagates. Nested calls join the outer one.
    Retries stop after TRANSACTION_TIME_LIMIT_SECONDS with ExecutionTimeout (code 50).
    """
    connection = connections[DEFAULT_DB_ALIAS]
    if in_transaction():
        return work()
    connection.ensure_connection()

    def callback(session):
        connection.session = session
        try:
            return work()
        except DatabaseError as exc:
            cause = exc.__cause__
            if isinstance(cause, PyMongoError) and cause.has_error_label("TransientTransactionError"):
                raise cause from exc  # let pymongo's with_transaction retry it
            raise
        finally:
            connection.session = None

    # Not causally consistent: a retry would then start with readConcern.afterClusterTime, and a
    # transaction whose first statement is the bulkWrite (gamification.services.progress_change)
    # is refused by the embedded server for it ("BSON field 'bulkWrite.readConcern' is an
    # unknown field"). One primary, and a transaction reads its own snapshot: nothing is lost.
    with (
        pymongo.timeout(TRANSACTION_TIME_LIMIT_SECONDS),
        connection.connection.start_session(causal_consistency=False) as session,
    ):
        result = session.with_transaction(callback)
    # The commit is a round trip of its own: count it like Django's atomic() does.
    log_operation("session.commit_transaction()", started=time.monotonic())
    return result
