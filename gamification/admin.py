"""Admin for the game. The ledger is append-only: points change only through points_adjust."""

from django import forms
from django.contrib import admin

from gamification import services
from gamification.models import Achievement, Badge, PointsEntry, Quest, QuestProgress, UserBadge
from studymaster.admin import ReadOnlyAdminMixin


class PointsAdjustmentForm(forms.ModelForm):
    note = forms.CharField(max_length=150, help_text="Why the points change (kept in the ledger).")

    class Meta:
        model = PointsEntry
        fields = ("user", "amount", "note")

    def clean(self):
        # The service's own rule, shown on the field it names (GamificationError.field).
        cleaned = super().clean()
        if "amount" in cleaned and "note" in cleaned:
            try:
                services.points_adjustment_check(amount=cleaned["amount"], note=cleaned["note"])
            except services.GamificationError as exc:
                self.add_error(exc.field, exc.message)
        return cleaned


@admin.register(PointsEntry)
class PointsEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The ledger. "Add" is the points adjustment: it writes an entry and moves user.points with it."""

    allow_add = True

    list_display = ("created_at", "user", "amount", "reason", "reference", "note")
    list_filter = ("reason", "created_at")
    search_fields = ("reference", "note", "user__username")
    list_select_related = ("user",)
    ordering = ("-created_at",)
    raw_id_fields = ("user",)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = PointsAdjustmentForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("user", "amount", "note")
        return ("user", "amount", "reason", "reference", "note", "created_at", "studied_at")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)

    def save_model(self, request, obj, form, change):
        entry = services.points_adjust(
            user=obj.user,
            amount=obj.amount,
            note=form.cleaned_data["note"],
            staff_username=request.user.username,
        )
        obj.pk, obj.reason, obj.reference, obj.note, obj.created_at = (
            entry.pk,
            entry.reason,
            entry.reference,
            entry.note,
            entry.created_at,
        )


class CatalogAdmin(admin.ModelAdmin):
    def get_readonly_fields(self, request, obj=None):
        return ("code",) if obj else ()

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.catalog_cache_clear()  # this process at once; others within CATALOG_TTL_SECONDS

    def has_delete_permission(self, request, obj=None):
        return False  # earned badges and progress refer to the code: deactivate instead


@admin.register(Badge)
class BadgeAdmin(CatalogAdmin):
    list_display = ("code", "name", "metric", "threshold", "sort_order", "is_active")
    list_filter = ("metric", "is_active")
    search_fields = ("code", "name", "description")
    ordering = ("sort_order", "code")


@admin.register(Quest)
class QuestAdmin(CatalogAdmin):
    list_display = ("code", "title", "period", "metric", "target", "reward_points", "is_active")
    list_filter = ("period", "metric", "is_active")
    search_fields = ("code", "title")
    ordering = ("sort_order", "code")


@admin.register(UserBadge)
class UserBadgeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("user", "badge", "earned_at")
    list_filter = ("badge", "earned_at")
    search_fields = ("user__username", "badge__code")
    list_select_related = ("user", "badge")
    ordering = ("-earned_at",)


@admin.register(QuestProgress)
class QuestProgressAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "user",
        "quest",
        "period_start",
        "time_zone",
        "progress",
        "target",
        "completed",
        "reward_points",
    )
    list_filter = ("quest", "completed", "period_start")
    search_fields = ("user__username", "quest__code")
    list_select_related = ("user", "quest")
    ordering = ("-period_start",)


@admin.register(Achievement)
class AchievementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "user", "kind", "title", "reference")
    list_filter = ("kind", "created_at")
    search_fields = ("user__username", "title", "reference")
    list_select_related = ("user",)
    ordering = ("-created_at",)
