"""The points ledger, the badge and quest catalogs, and what each user earned.

Unbounded per-user data (ledger, earned badges, quest progress, achievements) lives in
its own collections with indexes that fit the reads; the user's running totals live on
the user document (``accounts.User``) so the profile is one read.
"""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from gamification import catalog


class PointsEntry(models.Model):
    """One change of a user's points. INVARIANT: user.points == sum(amount) over the user's entries."""

    class Reason(models.TextChoices):
        STUDY_SESSION = "study_session", "Study session logged"
        STUDY_SESSION_DELETED = "study_session_deleted", "Study session deleted"
        QUEST_REWARD = "quest_reward", "Quest reward"
        QUEST_REWARD_REVOKED = "quest_reward_revoked", "Quest reward taken back"
        ADMIN_ADJUSTMENT = "admin_adjustment", "Adjusted by an admin"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="points_entries"
    )
    amount = models.IntegerField()
    reason = models.CharField(max_length=32, choices=Reason.choices)
    # What the entry is about (a study session id, "<quest>:<period start>:<session id>", ...).
    # Unique per user and reason, so a retried write can never pay twice.
    reference = models.CharField(max_length=200)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # When the study these points are for happened (the study session's start; an adjustment's,
    # when it was made): the weekly leaderboard counts by it, not by when it was logged.
    studied_at = models.DateTimeField()

    class Meta:
        db_table = "gamification_pointsentry"
        verbose_name_plural = "points entries"
        indexes = [
            models.Index(fields=["user", "-created_at"], name="points_user_created"),
            models.Index(fields=["studied_at"], name="points_studied"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["user", "reason", "reference"], name="points_unique_reference"),
        ]

    def __str__(self):
        return f"{self.amount:+d} {self.reason} ({self.reference})"


class Badge(models.Model):
    """A badge of the catalog: earned when ``metric`` reaches ``threshold``."""

    class Metric(models.TextChoices):
        SESSION_COUNT = catalog.SESSION_COUNT, "Study sessions logged"
        TOTAL_MINUTES = catalog.TOTAL_MINUTES, "Total minutes studied"
        LONGEST_STREAK = catalog.LONGEST_STREAK, "Longest streak (days)"
        DISTINCT_SUBJECTS = catalog.DISTINCT_SUBJECTS, "Different subjects studied"

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300)
    metric = models.CharField(max_length=32, choices=Metric.choices)
    threshold = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    sort_order = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        db_table = "gamification_badge"
        ordering = ["sort_order", "code"]

    def __str__(self):
        return self.name


class UserBadge(models.Model):
    """A badge a user earned. Once earned, it stays (even if the session that earned it is deleted)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="badges")
    # Keyed by the badge's code, which is stable across catalog re-seeding.
    badge = models.ForeignKey(Badge, on_delete=models.CASCADE, to_field="code", related_name="earned_by")
    earned_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "gamification_userbadge"
        # A badge award upserts by (user, badge): a plain index of exactly those fields serves it
        # (the unique constraint's partial index cannot, see Achievement).
        indexes = [models.Index(fields=["user", "badge"], name="userbadge_user_badge")]
        constraints = [models.UniqueConstraint(fields=["badge", "user"], name="userbadge_unique")]

    def __str__(self):
        return f"{self.user_id} earned {self.badge_id}"


class Quest(models.Model):
    """A quest template: reach ``target`` of ``metric`` within one daily or weekly period."""

    class Period(models.TextChoices):
        DAILY = catalog.DAILY, "Daily"
        WEEKLY = catalog.WEEKLY, "Weekly (ISO week, Monday start)"

    class Metric(models.TextChoices):
        MINUTES = catalog.MINUTES, "Minutes studied"
        SESSIONS = catalog.SESSIONS, "Study sessions logged"
        STUDY_DAYS = catalog.STUDY_DAYS, "Days with a study session"

    code = models.SlugField(max_length=50, unique=True)
    title = models.CharField(max_length=200)
    period = models.CharField(max_length=16, choices=Period.choices)
    metric = models.CharField(max_length=16, choices=Metric.choices)
    target = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    reward_points = models.PositiveIntegerField()
    sort_order = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        db_table = "gamification_quest"
        ordering = ["sort_order", "code"]

    def __str__(self):
        return self.title


class QuestProgress(models.Model):
    """A user's progress on one quest in one period (a local day, or an ISO week)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quest_progress"
    )
    quest = models.ForeignKey(Quest, on_delete=models.CASCADE, to_field="code", related_name="progress")
    period_start = models.DateField()
    period_end = models.DateField()
    progress = models.PositiveIntegerField(default=0)
    target = models.PositiveIntegerField()
    completed = models.BooleanField(default=False)
    completed_at = models.DateTimeField(null=True, blank=True)
    # The reward currently held for this period: paid on completion, taken back if a
    # deletion drops the progress of the still-open period below the target.
    reward_points = models.IntegerField(default=0)
    # The time zone of the study session that earned the reward (of the first that counted,
    # before one did): whether the period is still open is decided in it (docs/gamification.md).
    time_zone = models.CharField(max_length=64)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "gamification_questprogress"
        verbose_name_plural = "quest progress"
        # (user, period_start): the rewards a change's periods hold. (user, quest, period_start):
        # the upsert of every change; without an index of exactly its fields the embedded server
        # scans the collection (measured: 1,000 of 1,000), and real MongoDB would not use the
        # unique constraint's partial index either.
        indexes = [
            models.Index(fields=["user", "period_start"], name="questprogress_user_period"),
            models.Index(fields=["user", "quest", "period_start"], name="questprogress_user_quest"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["quest", "period_start", "user"], name="questprogress_unique"),
        ]

    def __str__(self):
        return f"{self.quest_id} {self.period_start}: {self.progress}/{self.target}"


class Achievement(models.Model):
    """A milestone in a user's history. Unique per (user, kind, reference): concurrency cannot duplicate it."""

    class Kind(models.TextChoices):
        LEVEL_UP = "level_up", "Level up"
        STREAK_RECORD = "streak_record", "Streak record"
        BADGE_EARNED = "badge_earned", "Badge earned"
        QUEST_COMPLETED = "quest_completed", "Quest completed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="achievements")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    title = models.CharField(max_length=200)
    reference = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "gamification_achievement"
        # Every change upserts its achievements by (user, kind, reference): that read needs a plain
        # index (the unique constraint is a partial index no equality query can use, see
        # StudyTotal), or it examines all the user's achievements, which grow with the history.
        indexes = [
            models.Index(fields=["user", "-created_at"], name="achievement_user_created"),
            models.Index(fields=["user", "kind", "reference"], name="achievement_user_kind_ref"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["kind", "reference", "user"], name="achievement_unique"),
        ]

    def __str__(self):
        return self.title


class StudyTotal(models.Model):
    """A maintained total of one user's study: a bounded document per user and key.

    Kept by ``gamification.services`` in the same transaction as every study session change,
    so that no rule and no read has to scan the user's history; ``manage.py recompute_totals``
    rebuilds them from the sessions and the ledger (``gamification.totals``). The keys, and the
    fields each kind holds besides ``user`` and ``key``:

    - ``month:YYYY-MM``: ``days``, by two-digit day of month (local dates, each session's own
      zone): ``{minutes, sessions, subjects: [{key, minutes, spellings: [[subject, sessions]]}]}``;
    - ``monthsum:YYYY-MM``: the month's summary, derived from its ``month:`` document alone
      (``totals.month_sum``): ``minutes`` by two-digit day, and the month's ``subjects`` merged,
      in the same form; a read of whole months (the stats) takes it instead of the month;
    - ``subject:<subject key>``: ``sessions``, ``minutes`` over all time (gone at 0 sessions);
    - ``run:YYYY-MM-DD``: a streak run (consecutive study days) starting that day: ``end``,
      ``prev_end`` (the previous run's last day, or null);
      ``runend:YYYY-MM-DD``: the same run by its last day: ``start``, ``next_start``;
    - ``summary``: ``paid_minutes`` (what the ledger paid for study minutes), ``subjects`` (how
      many subject keys), ``run_lengths`` (``[[length, runs]]``, longest first).

    Only ``user`` and ``key`` are model fields: the documents are read and written whole by
    the services, as raw MongoDB documents; the model makes ``migrate`` create the collection
    and its unique index, and a user's deletion cascade to them.
    """

    # Indexed by (user, key) below, which serves every read: by key, a range of keys, by user.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="study_totals", db_index=False
    )
    key = models.CharField(max_length=120)

    class Meta:
        db_table = "gamification_studytotal"
        # The backend makes a unique constraint a partial index ($type filters), which no plain
        # equality query can use: reads need an index of their own, with another key order.
        indexes = [models.Index(fields=["user", "key"], name="studytotal_user_key")]
        constraints = [models.UniqueConstraint(fields=["key", "user"], name="studytotal_unique_key")]

    def __str__(self):
        return f"{self.user_id} {self.key}"


class WeekPoints(models.Model):
    """A user's net points for the study of one ISO week (Monday 00:00 UTC, by ``studied_at``):
    the sum of those ledger entries, kept with every entry, for the weekly leaderboard.

    It also holds what the board shows and filters on, copied from the user (``listing``), so
    that the board reads one collection: the username, and whether the user is listed (active,
    not opted out). Every change of study writes them; a change of those user fields rewrites
    them on all of the user's weeks (``services.leaderboard_listing_set``)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="week_points", db_index=False
    )
    week_start = models.DateField()  # the Monday, in UTC
    points = models.IntegerField(default=0)
    username = models.CharField(max_length=150, default="")
    listed = models.BooleanField(default=True)

    class Meta:
        db_table = "gamification_weekpoints"
        verbose_name_plural = "week points"
        # The weekly board (equality on the week and on being listed, then by points and name),
        # a user's weeks (the upsert of each change, recompute_totals); uniqueness in another key
        # order (see StudyTotal).
        indexes = [
            models.Index(fields=["week_start", "listed", "-points", "username"], name="weekpoints_board"),
            models.Index(fields=["user", "week_start"], name="weekpoints_user_week"),
        ]
        constraints = [models.UniqueConstraint(fields=["week_start", "user"], name="weekpoints_unique_week")]

    def __str__(self):
        return f"{self.user_id} {self.week_start}: {self.points}"
