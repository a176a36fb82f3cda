"""Development: works with no .env at all, against a local server on the default port."""

from .base import *  # noqa: F403
from .base import configure

configure(
    globals(),
    debug=True,
    secret_key="dev-only-insecure-key-never-use-in-production",  # noqa: S106
    mongodb_uri="mongodb://127.0.0.1:27017/",
    allowed_hosts=["127.0.0.1", "localhost"],
)
