"""A study session: who studied what, when, for how long, and what it paid."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

MAX_DURATION_MINUTES = 720


class StudySession(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="study_sessions"
    )
    subject = models.CharField(max_length=100)
    # The subject trimmed, with inner whitespace collapsed and casefolded: "Linear  Algebra " and
    # "linear algebra" are one subject for stats and the variety badge.
    subject_key = models.CharField(max_length=100)
    duration_minutes = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DURATION_MINUTES)]
    )
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    # The user's time zone when the session was logged, and the calendar day of started_at in
    # it: changing the time zone later moves neither (quests decide in it, docs/gamification.md).
    time_zone = models.CharField(max_length=64)
    local_date = models.DateField()
    notes = models.TextField(blank=True, max_length=2000)
    # What logging it paid (minutes within the day's cap, and quest rewards it completed), and
    # the minutes the daily cap (STUDY_DAILY_CAP_MINUTES) left unpaid then.
    points_awarded = models.IntegerField(default=0)
    minutes_unpaid = models.PositiveIntegerField(default=0)
    # Nullable on purpose (contract): the unique index covers string keys only.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    # With a key: the SHA-256 of the request as sent (services.request_hash), so that the key
    # reused for a different request is refused rather than answered with this session.
    request_hash = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "sessions_app_studysession"
        indexes = [
            models.Index(fields=["user", "-started_at"], name="session_user_started"),
            models.Index(fields=["user", "local_date"], name="session_user_local_date"),
        ]
        constraints = [
            # Only string keys are indexed (the backend adds a $type filter), so sessions
            # without a key never collide.
            models.UniqueConstraint(
                fields=["user", "idempotency_key"], name="session_unique_idempotency_key"
            ),
        ]

    def __str__(self):
        return f"{self.subject} ({self.duration_minutes} min, {self.local_date})"
