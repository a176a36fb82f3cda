"""Admin for accounts. Progress fields are shown, never edited here: points change only through
the points ledger (gamification's admin action writes the entry), streaks only by recomputation.

SecantusDB defect B (docs/architecture.md, the embedded server's deviations): Permission's
default ordering sorts on ``content_type__app_label``, which together with
``select_related("content_type")`` loses the content type, so the permission widgets of the
user and group forms order by local fields.
"""

from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group, Permission
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.html import format_html

from accounts.models import User
from accounts.services import email_normalize, username_check_available
from gamification.selectors import current_streak_get
from gamification.services import leaderboard_listing_set
from gamification.totals import LISTING_FIELDS

PROGRESS_FIELDS = (
    "points",
    "level",
    "current_streak_today",
    "longest_streak",
    "last_study_date",
    "total_minutes",
    "session_count",
)
# Named by string, not imported: sessions_app depends on accounts, not the other way round.
STUDY_SESSION_VIEW_PERMISSION = "sessions_app.view_studysession"
STUDY_SESSION_CHANGELIST = "admin:sessions_app_studysession_changelist"


def permissions_by_local_fields():
    """All permissions with their content types, ordered without a related field (defect B)."""
    return Permission.objects.select_related("content_type").order_by("content_type_id", "codename")


def _username_available(form) -> str:
    """The form's username, refused as registration refuses it: taken up to case, width forms or
    look-alike characters by another account (accounts.services.username_check_available)."""
    username = form.cleaned_data.get("username")
    if username:
        username_check_available(username=username, exclude_pk=form.instance.pk)
    return username


class AccountCreationForm(AdminUserCreationForm):
    def clean_username(self):
        return _username_available(self)


class AccountChangeForm(UserChangeForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "user_permissions" in self.fields:
            self.fields["user_permissions"].queryset = permissions_by_local_fields()

    def clean_username(self):
        return _username_available(self)

    def clean_email(self):
        # As in accounts.services: stored lower-cased, so the unique index ignores case.
        return email_normalize(self.cleaned_data.get("email") or "")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = AccountChangeForm
    add_form = AccountCreationForm
    list_display = (
        "username",
        "email",
        "display_name",
        "points",
        "level",
        "current_streak_today",
        "session_count",
        "is_staff",
        "is_active",
        "date_joined",
    )
    list_filter = ("is_staff", "is_superuser", "is_active", "leaderboard_opt_out", "time_zone", "date_joined")
    search_fields = ("username", "email", "display_name")
    ordering = ("username",)
    readonly_fields = (
        *PROGRESS_FIELDS,
        "study_sessions",
        "last_login",
        "date_joined",
        "time_zone_changed_at",
    )
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        # Staff may set the time zone at any time; time_zone_changed_at is the learner's last
        # change through the API (once per 24 h).
        ("Profile", {"fields": ("display_name", "time_zone", "time_zone_changed_at", "leaderboard_opt_out")}),
        ("Progress (read-only; points change through the ledger)", {"fields": PROGRESS_FIELDS}),
    )

    @admin.display(description="current streak")
    def current_streak_today(self, user: User) -> int:
        # As shown to the learner: 0 once a whole local day passed without a session.
        return current_streak_get(user=user)

    @admin.display(description="study sessions")
    def study_sessions(self, user: User) -> str:
        """A link to the study session list, filtered to this user."""
        query = urlencode({"user__id__exact": str(user.pk)})
        return format_html(
            '<a href="{}?{}">{} study session{}</a>',
            reverse(STUDY_SESSION_CHANGELIST),
            query,
            user.session_count,
            pluralize(user.session_count),
        )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and set(LISTING_FIELDS) & set(form.changed_data):  # the weekly board's copy
            leaderboard_listing_set(user_id=obj.pk)

    def _may_view_study_sessions(self, request) -> bool:
        return request.user.has_perm(STUDY_SESSION_VIEW_PERMISSION)

    def get_list_display(self, request):
        list_display = super().get_list_display(request)
        if self._may_view_study_sessions(request):
            return (*list_display, "study_sessions")
        return list_display

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or not self._may_view_study_sessions(request):
            return fieldsets
        return (*fieldsets, ("Study sessions", {"fields": ("study_sessions",)}))


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(DjangoGroupAdmin):
    def formfield_for_manytomany(self, db_field, request=None, **kwargs):
        if db_field.name == "permissions":
            kwargs["queryset"] = permissions_by_local_fields()
        return super().formfield_for_manytomany(db_field, request=request, **kwargs)
