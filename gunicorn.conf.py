"""gunicorn's configuration file; the settings and hooks live in studymaster/gunicorn_conf.py."""

from studymaster.gunicorn_conf import *  # noqa: F403
