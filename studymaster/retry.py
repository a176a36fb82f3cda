"""Bounded retries, with backoff, of what the driver does not retry itself.

PyMongo retries a retryable read or write **once**, and only on a replica set
(docs/architecture.md, "Connecting to MongoDB"). It does not retry: a second transient failure, a failing ``getMore`` (the cursor
is gone: the whole read must start over), ``update_many``/``delete_many``, or anything on a
standalone server. :func:`retry_idempotent` wraps a whole unit of idempotent work and
runs it again on a transient failure; :func:`retry_guarded` does the same for work that is not
idempotent, asking a guard before each new attempt whether the last one did apply.

Only the ``transient`` class of :func:`studymaster.errors.classify` is retried: network
errors, not-primary, shutdown, retryable labels. Timeouts, an exhausted pool and an
unreachable cluster are not: the caller has already waited, and retrying would pile load on a
struggling server.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from studymaster.errors import classify, database_error_cause
from studymaster.observability import MONGO_RETRIES

logger = logging.getLogger("studymaster.retry")

T = TypeVar("T")

ATTEMPTS = 3  # the first try and two retries, each of which the driver may retry once more
BASE_WAIT_SECONDS = 0.1  # then 0.2, 0.4, ... each plus up to JITTER_SECONDS
JITTER_SECONDS = 0.1
MAX_WAIT_SECONDS = 2.0


def is_transient(exc: BaseException) -> bool:
    """A transient PyMongo error, raised as is or wrapped by the ORM in a DatabaseError."""
    cause = database_error_cause(exc)
    return cause is not None and classify(cause).retryable


def _retrying(operation: str, attempts: int) -> Retrying:
    def before_sleep(state: RetryCallState) -> None:
        MONGO_RETRIES.labels(operation=operation).inc()
        error = state.outcome.exception()
        problem = classify(database_error_cause(error) or error)
        logger.warning(
            "retrying %s (attempt %d of %d): %s",
            operation,
            state.attempt_number + 1,
            attempts,
            problem.message,
        )

    return Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential_jitter(
            multiplier=BASE_WAIT_SECONDS, jitter=JITTER_SECONDS, max=MAX_WAIT_SECONDS
        ),
        before_sleep=before_sleep,
        reraise=True,
    )


def retry_idempotent(
    func: Callable[..., T] | None = None, *, operation: str | None = None, attempts: int = ATTEMPTS
):
    """Decorate an idempotent unit of database work so a transient failure runs it again.

    Use it only where running the function twice leaves the same state as running it once:
    reads (including whole cursor iterations, so a failed ``getMore`` restarts the read),
    ``update_many`` with ``$set``, ``delete_many``, upserts keyed on a unique field. After
    ``attempts`` tries, the last error propagates unchanged.
    """

    def decorate(inner: Callable[..., T]) -> Callable[..., T]:
        name = operation or inner.__qualname__

        @functools.wraps(inner)
        def wrapper(*args, **kwargs) -> T:
            return _retrying(name, attempts)(inner, *args, **kwargs)

        return wrapper

    return decorate(func) if func is not None else decorate


def retry_guarded(
    write: Callable[[], T],
    *,
    applied: Callable[[], T | None],
    operation: str,
    attempts: int = ATTEMPTS,
) -> T:
    """Run a non-idempotent ``write``, retrying a transient failure only when it did not apply.

    A transient error can come after the server applied the write (the reply was lost). So
    before each new attempt, ``applied()`` looks for the write's effect, typically by its
    idempotency key, and returns it (ending the retries) or ``None`` (try again).
    """
    first = True

    def attempt() -> T:
        nonlocal first
        if not first:
            found = applied()
            if found is not None:
                return found
        first = False
        return write()

    return _retrying(operation, attempts)(attempt)
