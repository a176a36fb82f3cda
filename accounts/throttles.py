"""Throttles of the doors that guess, probe or farm: login (API and admin), registration,
password checks, profile changes and study session writes; counted in MongoDB so that every
process shares them.

Rates are DRF scopes in REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], set from the environment:

| scope      | variable                | counted per                                       |
|------------|-------------------------|---------------------------------------------------|
| ``login``  | THROTTLE_RATE_LOGIN     | client address, and username (its normalised key) |
| ``register`` | THROTTLE_RATE_REGISTER | client address                                    |
| ``password`` | THROTTLE_RATE_PASSWORD | account: requests that present its password       |
| ``profile``  | THROTTLE_RATE_PROFILE  | account: profile changes                          |
| ``study_session`` | THROTTLE_RATE_STUDY_SESSION | account: study session logs and deletions |

Every attempt counts, right or wrong, before anything is checked: a throttle that counted only
failures would tell a guesser which guess was right by letting it through. The API login and
the admin login (:class:`accounts.middleware.AdminLoginThrottleMiddleware`) share the ``login``
counts, so two doors do not double a guesser's budget. The client address comes from DRF's
``get_ident`` (REMOTE_ADDR, or X-Forwarded-For behind TRUSTED_PROXY_COUNT proxies).
:func:`throttle_lift` ends a throttle early (``manage.py throttle_lift``).
"""

from __future__ import annotations

import hashlib
import ipaddress

from django.db import connection
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from accounts.models import ThrottleCounter, User
from accounts.usernames import username_key
from studymaster.db import log_operation
from studymaster.ratelimit import FixedWindowCounter, parse_rate

# Which scopes count by which kind of key; throttle_lift clears them by kind.
SCOPES_BY_KIND = {
    "address": ("login", "register"),
    "username": ("login",),
    "user": ("password", "profile", "study_session"),
}


def throttle_counter() -> FixedWindowCounter:
    # Its raw PyMongo calls bypass the ORM's query log: log_operation counts them too.
    return FixedWindowCounter(connection.database[ThrottleCounter._meta.db_table], on_operation=log_operation)


def _key(scope: str, kind: str, value: str) -> str:
    # Hashed so that a key has a fixed length whatever a client sends as a username; a lone
    # surrogate (valid in JSON) must not make that a 500.
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{scope}:{kind}:{digest}"


def throttle_hit(scope: str, keys: list[str]) -> int | None:
    """Count one attempt on each of ``keys`` under ``scope``'s rate. Returns the seconds to wait
    when a key is over the rate (the keys after it are not counted), else None."""
    rate = parse_rate(api_settings.DEFAULT_THROTTLE_RATES[scope])
    counter = throttle_counter()
    for key in keys:
        hit = counter.hit(key, window_seconds=rate.window_seconds)
        if hit.count > rate.limit:
            return hit.retry_after_seconds
    return None


def login_keys(*, address: str, username) -> list[str]:
    """The ``login`` keys of an attempt: the address, and the username as authentication reads
    it (its key: trimmed, NFKC, case-folded), when one was sent."""
    keys = [_key("login", "address", address)]
    if isinstance(username, str) and username_key(username):
        keys.append(_key("login", "username", username_key(username)))
    return keys


class MongoThrottle(BaseThrottle):
    """Fixed-window throttle over several keys; the request is refused when any key is over."""

    scope = ""

    def __init__(self):
        self.retry_after_seconds = None

    def keys(self, request) -> list[str]:
        return [_key(self.scope, "address", self.get_ident(request))]

    def allow_request(self, request, view) -> bool:
        self.retry_after_seconds = throttle_hit(self.scope, self.keys(request))
        return self.retry_after_seconds is None

    def wait(self):
        return self.retry_after_seconds


class RegisterThrottle(MongoThrottle):
    scope = "register"


class LoginThrottle(MongoThrottle):
    """Counted per client address and, separately, per username: spreading guesses over many
    usernames hits the address limit, and spreading them over many addresses the username one."""

    scope = "login"

    def keys(self, request) -> list[str]:
        username = request.data.get("username") if isinstance(request.data, dict) else None
        return login_keys(address=self.get_ident(request), username=username)


class AccountThrottle(MongoThrottle):
    """Counted per authenticated account, whatever address it comes from."""

    def keys(self, request) -> list[str]:
        return [_key(self.scope, "user", str(request.user.pk))]


class PasswordCheckThrottle(AccountThrottle):
    """Requests that present the account's password to be checked (change it, change the email,
    delete the account): a stolen access token must not become a password oracle."""

    scope = "password"


class ProfileThrottle(AccountThrottle):
    """Profile changes: what a change answers (an email taken by someone else) must not be
    probed at speed."""

    scope = "profile"


class StudySessionThrottle(AccountThrottle):
    """Study session writes (log, delete): a person logs a few a day, a script thousands a minute.
    The services are not throttled: the demo and the benches call them directly."""

    scope = "study_session"


def client_address(request) -> str:
    """The address the throttles count a Django or DRF request by."""
    return BaseThrottle().get_ident(request)


def throttle_lift(*, username: str | None = None, address: str | None = None) -> int:
    """End the throttles of a username (its login count, and its account's password, profile and
    study session counts) or of a client address (its login and registration counts) before their windows
    end. Returns how many counters were removed. Raises ValueError for an address that is not
    an IP address, or when neither is given."""
    if not username and not address:
        raise ValueError("name a --username or an --address to lift")
    keys = []
    if username:
        key = username_key(username)
        keys += [_key(scope, "username", key) for scope in SCOPES_BY_KIND["username"]]
        user_pk = User.objects.filter(username_key=key).values_list("pk", flat=True).first()
        if user_pk is not None:
            keys += [_key(scope, "user", str(user_pk)) for scope in SCOPES_BY_KIND["user"]]
    if address:
        try:
            canonical = str(ipaddress.ip_address(address.strip()))
        except ValueError:
            raise ValueError(
                f"{address!r} is not an IP address, such as 203.0.113.7 or 2001:db8::1"
            ) from None
        for spelling in {address.strip(), canonical}:
            keys += [_key(scope, "address", spelling) for scope in SCOPES_BY_KIND["address"]]
    counter = throttle_counter()
    return sum(counter.reset(key) for key in keys)
