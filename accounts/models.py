import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models


def validate_time_zone(value):
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone, such as Europe/Berlin.")


class User(AbstractUser):
    """A learner or a member of staff. Progress that is read with the profile lives here too."""

    display_name = models.CharField(max_length=100, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    leaderboard_opt_out = models.BooleanField(default=False)

    # Progress, kept on the user document so the profile is one read. Only the
    # gamification services change these, with single-document atomic updates.
    points = models.IntegerField(default=0)
    level = models.PositiveIntegerField(default=1)
    current_streak = models.PositiveIntegerField(default=0)
    longest_streak = models.PositiveIntegerField(default=0)
    total_minutes = models.PositiveIntegerField(default=0)
    session_count = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "accounts_user"
