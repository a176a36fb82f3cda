"""What every endpoint shares: the error shape and the pagination envelope.

Errors: ``{"code": "...", "message": "...", "fields": {"<field>": ["..."]}}``, with
``fields`` for validation errors only. Lists: ``{count, next, previous, results}``.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from studymaster.errors import database_error_cause, database_error_response


class StandardPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


def _flatten(detail) -> list[str]:
    if isinstance(detail, dict):
        return [message for value in detail.values() for message in _flatten(value)]
    if isinstance(detail, list):
        return [message for item in detail for message in _flatten(item)]
    return [str(detail)]


def _fields(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {str(key): _flatten(value) for key, value in detail.items()}
    return {"non_field_errors": _flatten(detail)}


def error_response(code: str, message: str, http_status: int, *, fields=None, headers=None) -> Response:
    body = {"code": code, "message": message}
    if fields is not None:
        body["fields"] = fields
    return Response(body, status=http_status, headers=headers)


def exception_handler(exc, context):
    """DRF's handler, reshaped into the one error shape."""
    if (database_error := database_error_cause(exc)) is not None:
        return database_error_response(database_error)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _fields(exc.detail)
        first = next(iter(fields.values()), ["Invalid input."])[0]
        body = {"code": "invalid", "message": first, "fields": fields}
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        message = " ".join(_flatten(detail))
        body = {"code": str(code), "message": message}
    response.data = body
    return response


def not_found() -> Response:
    return error_response("not_found", "Not found.", status.HTTP_404_NOT_FOUND)
