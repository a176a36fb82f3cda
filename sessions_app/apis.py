"""Thin DRF views for study sessions and their statistics.

Refusals (StudySessionRefused, StudySessionNotFound) are not caught here: the one API
handler (``studymaster.api.exception_handler``) answers them.
"""

from __future__ import annotations

import datetime

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.throttles import StudySessionThrottle
from sessions_app import selectors, services
from sessions_app.models import MAX_DURATION_MINUTES
from studymaster.api import paginated_response
from studymaster.dates import local_today

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY_LENGTH = 255


class StudySessionOutput(serializers.Serializer):
    id = serializers.CharField()
    subject = serializers.CharField()
    duration_minutes = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField()
    time_zone = serializers.CharField()
    local_date = serializers.DateField()
    notes = serializers.CharField()
    points_awarded = serializers.IntegerField()
    minutes_unpaid = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class StudySessionInput(serializers.Serializer):
    subject = serializers.CharField(max_length=100)  # trims whitespace; 1-100 characters after trimming
    duration_minutes = serializers.IntegerField(min_value=1, max_value=MAX_DURATION_MINUTES)
    started_at = serializers.DateTimeField(required=False)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class StatsOutput(serializers.Serializer):
    # "from" is a Python keyword, hence the inline serializers.
    by_day = inline_serializer(
        "StatsDay", {"date": serializers.DateField(), "minutes": serializers.IntegerField()}, many=True
    )
    by_week = inline_serializer(
        "StatsWeek", {"week": serializers.CharField(), "minutes": serializers.IntegerField()}, many=True
    )
    by_subject = inline_serializer(
        "StatsSubject", {"subject": serializers.CharField(), "minutes": serializers.IntegerField()}, many=True
    )

    def get_fields(self):
        return {"from": serializers.DateField(), "to": serializers.DateField(), **super().get_fields()}


IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    str,
    OpenApiParameter.HEADER,
    description="A retry with the same key returns the first result and pays nothing twice.",
)


class StudySessionWritesThrottled:
    """Writes (logging, deleting) are throttled per account; reads are not."""

    def get_throttles(self):
        return [StudySessionThrottle()] if self.request.method in ("POST", "DELETE") else []


class StudySessionListCreateApi(StudySessionWritesThrottled, APIView):
    @extend_schema(responses=StudySessionOutput(many=True))
    def get(self, request):
        rows = selectors.study_session_list(user=request.user)
        # The user's session count is a maintained total: the list costs one read, not two.
        return paginated_response(request, self, rows, StudySessionOutput, count=request.user.session_count)

    @extend_schema(
        request=StudySessionInput, responses={201: StudySessionOutput}, parameters=[IDEMPOTENCY_PARAMETER]
    )
    def post(self, request):
        key = _idempotency_key(request)
        data = StudySessionInput(data=request.data)
        data.is_valid(raise_exception=True)
        logged = services.study_session_log(user=request.user, idempotency_key=key, **data.validated_data)
        headers = {"Idempotent-Replayed": "true"} if logged.replayed else None
        return Response(
            StudySessionOutput(logged.session).data, status=status.HTTP_201_CREATED, headers=headers
        )


class StudySessionDetailApi(StudySessionWritesThrottled, APIView):
    @extend_schema(responses=StudySessionOutput)
    def get(self, request, session_id):
        session = selectors.study_session_get(user=request.user, session_id=session_id)
        return Response(StudySessionOutput(session).data)

    @extend_schema(responses={204: None})
    def delete(self, request, session_id):
        services.study_session_delete(user=request.user, session_id=session_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _idempotency_key(request) -> str | None:
    """The Idempotency-Key header, if any; a 400 naming the header when its length is wrong."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        message = f"The {IDEMPOTENCY_HEADER} header must be 1-{MAX_IDEMPOTENCY_KEY_LENGTH} characters."
        raise serializers.ValidationError({IDEMPOTENCY_HEADER: [message]})
    return key


# Far enough from Python's calendar's ends (years 1 and 9999) that the default range and the
# day-by-day series around them never overflow.
STATS_FIRST_DATE, STATS_LAST_DATE = datetime.date(1900, 1, 1), datetime.date(9998, 12, 31)


def _stats_date_check(value: datetime.date) -> None:
    if not STATS_FIRST_DATE <= value <= STATS_LAST_DATE:
        raise serializers.ValidationError(f"Use a date from {STATS_FIRST_DATE} to {STATS_LAST_DATE}.")


class StatsInput(serializers.Serializer):
    """``from`` and ``to``, local dates; by default the 30 days up to ``context["today"]``."""

    # "from" is a Python keyword: the fields are renamed below.
    date_from = serializers.DateField(
        required=False, input_formats=["%Y-%m-%d"], validators=[_stats_date_check]
    )
    date_to = serializers.DateField(
        required=False, input_formats=["%Y-%m-%d"], validators=[_stats_date_check]
    )

    def to_internal_value(self, data):
        renamed = {"date_from": data.get("from"), "date_to": data.get("to")}
        try:
            return super().to_internal_value({k: v for k, v in renamed.items() if v is not None})
        except serializers.ValidationError as exc:
            names = {"date_from": "from", "date_to": "to"}
            raise serializers.ValidationError({names.get(k, k): v for k, v in exc.detail.items()}) from None

    def validate(self, attrs):
        date_to = attrs.get("date_to", self.context["today"])
        date_from = attrs.get("date_from", date_to - datetime.timedelta(days=29))
        if date_from > date_to:
            raise serializers.ValidationError({"from": ["from must be on or before to."]})
        if (date_to - date_from).days + 1 > selectors.MAX_STATS_DAYS:
            raise serializers.ValidationError(
                {"to": [f"The range may cover at most {selectors.MAX_STATS_DAYS} days."]}
            )
        return {"date_from": date_from, "date_to": date_to}


class StatsApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "from", datetime.date, description="First local date (default: 29 days before to)."
            ),
            OpenApiParameter(
                "to", datetime.date, description="Last local date (default: today, user's time zone)."
            ),
        ],
        responses=StatsOutput,
    )
    def get(self, request):
        data = StatsInput(data=request.query_params, context={"today": local_today(request.user)})
        data.is_valid(raise_exception=True)
        return Response(selectors.study_stats(user=request.user, **data.validated_data))
