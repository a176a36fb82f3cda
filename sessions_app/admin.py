"""Admin for study sessions: read-only; deleting goes through the service, which takes back the points."""

import contextlib

from django.contrib import admin

from sessions_app.models import StudySession
from sessions_app.services import StudySessionNotFound, study_session_delete
from studymaster.admin import ReadOnlyAdminMixin


@admin.register(StudySession)
class StudySessionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # Learners log sessions through the API, where every rule applies; deleting is the service's.
    allow_delete = True
    list_display = ("started_at", "user", "subject", "duration_minutes", "local_date", "points_awarded")
    list_filter = ("local_date", "started_at")
    search_fields = ("user__username", "subject", "subject_key")
    list_select_related = ("user",)
    ordering = ("-started_at",)  # local fields only (SecantusDB defect B)
    fields = (
        "user",
        "subject",
        "subject_key",
        "duration_minutes",
        "started_at",
        "ended_at",
        "time_zone",
        "local_date",
        "notes",
        "points_awarded",
        "minutes_unpaid",
        "idempotency_key",
        "created_at",
    )
    readonly_fields = fields

    def delete_model(self, request, obj):
        with contextlib.suppress(StudySessionNotFound):  # already gone
            study_session_delete(user=obj.user, session_id=obj.pk)

    def delete_queryset(self, request, queryset):
        # One by one through the service (and without the list's $lookup, which
        # a bulk delete cannot span): each deletion takes its points back.
        for session in queryset.select_related(None).order_by():
            self.delete_model(request, session)
