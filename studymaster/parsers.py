"""The API's request parser (REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]).

Its own module: DRF reads the parser setting while ``rest_framework.views`` is imported, which
studymaster/api.py imports.
"""

from __future__ import annotations

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with a body nested too deep for Python's decoder (``"[" * 50000``) a
    400 ``parse_error`` like any other malformed JSON, not a RecursionError and a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the body is nested too deeply.") from None
