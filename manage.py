#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studymaster.settings.dev")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # Settings that cannot load (a malformed variable) stop every command: one line, exit 2,
        # as the commands' own configuration errors. --traceback shows where.
        if "--traceback" in sys.argv:
            raise
        print(f"configuration: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
