"""Tests: the test session points DATABASES at an embedded server or MONGODB_TEST_URI.

Never reads ``.env``: a developer's file must not change what the suite tests.
"""

from .base import *  # noqa: F403
from .base import configure

configure(
    globals(),
    debug=False,
    secret_key="test-only-insecure-key-long-enough-for-hs256",  # noqa: S106
    mongodb_uri="mongodb://127.0.0.1:27017/",
    allowed_hosts=["testserver", "127.0.0.1", "localhost"],
    dotenv=False,
)

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
