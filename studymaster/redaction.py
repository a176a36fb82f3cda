"""Keep MongoDB credentials out of logs and Django's error reports."""

import logging
import re

from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from studymaster.mongo import redact


class RedactingLogFilter(logging.Filter):
    """Rewrite each record's message so no URI userinfo reaches a handler."""

    def filter(self, record):
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


class RedactingExceptionReporterFilter(SafeExceptionReporterFilter):
    """Mask URI settings and ``DATABASES[...]["HOST"]``, which Django shows by default."""

    hidden_settings = re.compile(
        r"API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URI|^HOST$", flags=re.IGNORECASE
    )

    def cleanse_setting(self, key, value):
        cleansed = super().cleanse_setting(key, value)
        return redact(cleansed) if isinstance(cleansed, str) else cleansed


class RedactingExceptionReporter(ExceptionReporter):
    """Scrub the finished report too: frame locals and exception text can hold a URI."""

    def get_traceback_html(self):
        return redact(super().get_traceback_html())

    def get_traceback_text(self):
        return redact(super().get_traceback_text())
