import functools
import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.core.exceptions import ValidationError
from django.db import models

from accounts.usernames import username_fields, username_key


@functools.cache
def time_zone_names() -> frozenset[str]:
    """The IANA names this machine knows; read from disk once, it scans the tz database."""
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value):
    if value not in time_zone_names():
        raise ValidationError(f"{value!r} is not an IANA time zone, such as Europe/Berlin.")


class UserManager(DjangoUserManager):
    def get_by_natural_key(self, username):
        # By the normalised key: createsuperuser's "already taken" check and natural keys agree
        # with login (accounts.backends) that "Ada" and "ada" are one account.
        return self.get(username_key=username_key(username))

    async def aget_by_natural_key(self, username):
        return await self.aget(username_key=username_key(username))


class User(AbstractUser):
    """A learner or a member of staff. Progress that is read with the profile lives here too."""

    # Derived from username on every save (accounts.usernames); unique, so two accounts never
    # share a name up to case and Unicode compatibility forms, nor one that looks the same.
    username_key = models.TextField(unique=True, editable=False)
    username_skeleton = models.TextField(unique=True, editable=False)
    display_name = models.CharField(max_length=100, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    # When the user last changed the time zone through the API (once per 24 h: quests count
    # days in it). Registration and staff edits in the admin leave it alone.
    time_zone_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    leaderboard_opt_out = models.BooleanField(default=False)

    # Progress, kept on the user document so the profile is one read. Only the
    # gamification services change these, with single-document atomic updates.
    points = models.IntegerField(default=0)
    level = models.PositiveIntegerField(default=1)
    current_streak = models.PositiveIntegerField(default=0)
    longest_streak = models.PositiveIntegerField(default=0)
    total_minutes = models.PositiveIntegerField(default=0)
    session_count = models.PositiveIntegerField(default=0)
    # The latest local date with a session: with it, the current streak shown is correct as of
    # any later day without a write (gamification.selectors.current_streak_get).
    last_study_date = models.DateField(null=True, blank=True)
    # Counts the changes of progress: a change composed from reads made outside a transaction
    # writes only while it is still the one it read (gamification.services.progress_change).
    progress_version = models.PositiveBigIntegerField(default=0, editable=False)

    objects = UserManager()

    class Meta:
        db_table = "accounts_user"
        constraints = [
            # Emails are stored lower-cased (accounts.services), so this makes them unique
            # without regard to case. Users without an email (createsuperuser) are exempt.
            models.UniqueConstraint(
                fields=["email"], condition=models.Q(email__gt=""), name="accounts_user_email_unique"
            ),
        ]
        indexes = [
            # The all-time leaderboard (gamification.selectors.leaderboard_list): equality on the
            # opt-out and active flags, then sorted by points and username, so no in-memory sort.
            models.Index(
                fields=["leaderboard_opt_out", "is_active", "-points", "username"],
                name="accounts_user_leaderboard",
            ),
        ]

    def save(self, *args, **kwargs):
        # A single-row invariant: whichever way a user is saved (registration, the admin's forms,
        # createsuperuser, a shell), its keys follow its username.
        derived = username_fields(self.username)
        for field, value in derived.items():
            setattr(self, field, value)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "username" in update_fields:
            kwargs["update_fields"] = {*update_fields, *derived}
        super().save(*args, **kwargs)


class RevokedToken(models.Model):
    """A refresh token that was rotated out: it may not be used again.

    Unique by the token's ``jti``, so revoking is one insert and a second use of a
    rotated-out token fails on the unique index. MongoDB deletes each entry through a
    TTL index once the token has expired anyway (see migration 0004).
    """

    jti = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()

    class Meta:
        db_table = "accounts_revokedtoken"

    def __str__(self):
        return f"revoked token {self.jti}"


class RevokedTokenFamily(models.Model):
    """Every refresh token descended from one login, revoked: at logout, or when a rotated-out
    token of the family comes back (someone holds a copy, so its successors are not safe either).

    ``family`` is the tokens' ``family`` claim, set at login and carried on each rotation
    (accounts.services). ``expires_at`` is when the last token the family could hold expires;
    a TTL index deletes the entry then (migration 0007).
    """

    family = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()

    class Meta:
        db_table = "accounts_revokedtokenfamily"

    def __str__(self):
        return f"revoked token family {self.family}"


class ThrottleCounter(models.Model):
    """One fixed-window request count of a throttle (accounts.throttles).

    Written only by ``studymaster.ratelimit.FixedWindowCounter`` with an atomic upsert;
    the model exists so that ``migrate`` creates the collection and its TTL index.
    """

    key = models.CharField(max_length=200, unique=True)
    count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField()

    class Meta:
        db_table = "accounts_throttlecounter"

    def __str__(self):
        return f"{self.key}: {self.count}"
