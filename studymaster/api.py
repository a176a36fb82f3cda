"""What every endpoint shares: the error shape and the pagination envelope.

Errors: ``{"code": "...", "message": "...", "fields": {"<field>": ["..."]}}``, with
``fields`` for validation errors only. Every error reaches that shape through one route,
:func:`exception_handler`: DRF's own exceptions, Django's ``ValidationError`` (accounts'
services), every :class:`~studymaster.errors.DomainError` and database errors. Views do not
catch them. Lists: ``{count, next, previous, results}``, through :func:`paginated_response`.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer, as_serializer_error
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from studymaster.errors import DomainError, database_error_cause, database_error_response


class StandardPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class CountedRows:
    """A queryset whose length is already known (a maintained total): pagination slices it in the
    database and asks it no ``count``, an operation whose cost grows with the rows it counts."""

    def __init__(self, rows, count: int):
        self.rows, self._count = rows, count

    def count(self) -> int:
        return self._count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):
        return self.rows[index]


def paginated_response(
    request,
    view,
    rows,
    serializer_class: type[BaseSerializer],
    *,
    position_field: str | None = None,
    count: int | None = None,
) -> Response:
    """One page of ``rows`` (a queryset, paginated in the database, or a list) in the list envelope.

    With ``position_field``, each row of the page also gets its 1-based position in the whole
    list under that name (the leaderboard's rank). ``count``, when the caller keeps it, spares
    the database counting the rows.
    """
    paginator = StandardPagination()
    if count is not None:
        rows = CountedRows(rows, count)
    page = paginator.paginate_queryset(rows, request, view=view)
    if position_field is not None:
        first = paginator.page.start_index()
        page = [{position_field: first + offset, **row} for offset, row in enumerate(page)]
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


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


def _domain_error_response(exc: DomainError) -> Response:
    body = {"code": exc.code, "message": exc.message}
    if exc.field is not None:
        body["fields"] = {exc.field: [exc.message]}
    return Response(body, status=exc.status)


# A 429 that names no wait (a Throttled raised without one) says this much.
DEFAULT_RETRY_AFTER_SECONDS = 60


def exception_handler(exc, context):
    """DRF's handler, reshaped into the one error shape; also answers domain and database errors."""
    if (database_error := database_error_cause(exc)) is not None:
        return database_error_response(database_error)
    if isinstance(exc, DomainError):
        return _domain_error_response(exc)
    if isinstance(exc, RequestDataTooBig):
        # Django raises it when the view first reads a body over DATA_UPLOAD_MAX_MEMORY_SIZE.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = {
            "code": "request_too_large",
            "message": f"The request body is larger than the {limit:,} bytes this API accepts.",
        }
        return Response(body, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        # Services validate with Django's ValidationError; a dict of them names the fields.
        detail = as_serializer_error(exc)
        if NON_FIELD_ERRORS in detail:
            detail[api_settings.NON_FIELD_ERRORS_KEY] = detail.pop(NON_FIELD_ERRORS)
        exc = exceptions.ValidationError(detail)
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
        if isinstance(detail, dict) and "detail" in detail:
            # simplejwt's errors: {"detail": ..., "code": ..., "messages": [...]}.
            code = detail.get("code") or code
            detail = detail["detail"]
        message = " ".join(_flatten(detail))
        body = {"code": str(code), "message": message}
    response.data = body
    if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS and "Retry-After" not in response:
        response["Retry-After"] = str(DEFAULT_RETRY_AFTER_SECONDS)
    return response


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def _not_found_json(request) -> JsonResponse:
    message = "Not found."
    if not request.path.endswith("/"):
        try:
            resolve(request.path + "/")
            message = f"Not found. API URLs end with a slash: {request.path}/"
        except Resolver404:
            pass
    return JsonResponse({"code": "not_found", "message": message}, status=status.HTTP_404_NOT_FOUND)


def api_not_found(request, *args, **kwargs):
    """The last ``/api/`` route: a JSON 404 even with DEBUG on, where handler404 is not used."""
    return _not_found_json(request)


def page_not_found(request, exception):
    """``handler404``: the error shape for API paths, Django's page elsewhere (the admin)."""
    if _is_api(request):
        return _not_found_json(request)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """``handler500``: the error shape for API paths; never a stack trace or a setting."""
    if _is_api(request):
        return JsonResponse(
            {"code": "server_error", "message": "Something went wrong on our side. Try again later."},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    return defaults.server_error(request)
