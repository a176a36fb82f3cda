"""Development: works with no .env at all, against a local server on the default port.

These settings never serve a remote database: ``runserver`` (here) and the WSGI and ASGI
entry points (``SERVE_LOCAL_DATABASE_ONLY``) refuse a MONGODB_URI that is not on this machine.
Other management commands may use one (for example ``export_local`` against a remote source).
"""

import sys

from studymaster.mongo import refuse_remote_database_in_development

from .base import *  # noqa: F403
from .base import configure

configure(
    globals(),
    debug=True,
    secret_key="dev-only-insecure-key-never-use-in-production",  # noqa: S106
    mongodb_uri="mongodb://127.0.0.1:27017/",
    allowed_hosts=["127.0.0.1", "localhost"],
)

SERVE_LOCAL_DATABASE_ONLY = True
if sys.argv[1:2] == ["runserver"]:
    # Here, before the autoreloader starts: a refusal stops the command instead of its thread.
    refuse_remote_database_in_development(MONGODB_URI)  # noqa: F405
