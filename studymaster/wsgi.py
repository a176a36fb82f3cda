"""The WSGI entry point. Without DJANGO_SETTINGS_MODULE it serves the production settings,
which refuse to start without SECRET_KEY, MONGODB_URI and ALLOWED_HOSTS: a deployment that forgets
the variable fails at once rather than serving with DEBUG on and a published key. The development
settings, when named, serve only a database on this machine.
"""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from studymaster.mongo import refuse_remote_database_in_development

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studymaster.settings.prod")
application = get_wsgi_application()
if settings.SERVE_LOCAL_DATABASE_ONLY:
    refuse_remote_database_in_development(settings.MONGODB_URI)
