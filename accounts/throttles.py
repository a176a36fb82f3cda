"""Login and registration throttles, counted in MongoDB so that every process shares them.

Rates are DRF scopes ("login", "register") in REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], set
from THROTTLE_RATE_LOGIN and THROTTLE_RATE_REGISTER. The client address comes from DRF's
``get_ident`` (REMOTE_ADDR, or X-Forwarded-For behind TRUSTED_PROXY_COUNT proxies).
"""

from __future__ import annotations

import hashlib

from django.db import connection
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from accounts.models import ThrottleCounter
from studymaster.db import log_operation
from studymaster.ratelimit import FixedWindowCounter, parse_rate


def throttle_counter() -> FixedWindowCounter:
    # Its raw PyMongo calls bypass the ORM's query log: log_operation counts them too.
    return FixedWindowCounter(connection.database[ThrottleCounter._meta.db_table], on_operation=log_operation)


def _key(scope: str, kind: str, value: str) -> str:
    # Hashed so that a key has a fixed length whatever a client sends as a username.
    return f"{scope}:{kind}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"


class MongoThrottle(BaseThrottle):
    """Fixed-window throttle over several keys; the request is refused when any key is over."""

    scope = ""

    def __init__(self):
        self.retry_after_seconds = None

    def keys(self, request) -> list[str]:
        return [_key(self.scope, "address", self.get_ident(request))]

    def allow_request(self, request, view) -> bool:
        rate = parse_rate(api_settings.DEFAULT_THROTTLE_RATES[self.scope])
        counter = throttle_counter()
        for key in self.keys(request):
            hit = counter.hit(key, window_seconds=rate.window_seconds)
            if hit.count > rate.limit:
                self.retry_after_seconds = hit.retry_after_seconds
                return False
        return True

    def wait(self):
        return self.retry_after_seconds


class RegisterThrottle(MongoThrottle):
    scope = "register"


class LoginThrottle(MongoThrottle):
    """Counted per client address and, separately, per username: spreading guesses over many
    usernames hits the address limit, and spreading them over many addresses the username one."""

    scope = "login"

    def keys(self, request) -> list[str]:
        keys = super().keys(request)
        username = request.data.get("username") if isinstance(request.data, dict) else None
        if isinstance(username, str) and username:
            keys.append(_key(self.scope, "username", username.casefold()))
        return keys
