"""Authentication with permissions read without a join (SecantusDB defect A, docs/architecture.md).

Django's ModelBackend builds the permission set with
``values_list("content_type__app_label", "codename")``, a projection across a foreign key that
the embedded server answers with a literal 1, so every non-superuser member of staff would
lose the admin. Here each collection is read on its own local fields and the
``"app_label.codename"`` strings are put together in Python. The results are the same on
MongoDB and Atlas.

Login looks the account up by its normalised username key (accounts.usernames): ModelBackend's
``authenticate`` asks ``User.objects.get_by_natural_key``, which accounts.models.UserManager
answers by ``username_key``. So ``"Ada"``, ``" ada"`` and ``"ａｄａ"`` log in to the account
``ada``, and the login throttles count them as one name.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType


def _permission_names(permissions) -> set[str]:
    """``{"app_label.codename"}`` for a Permission queryset, reading only local fields."""
    rows = list(permissions.values_list("content_type_id", "codename").order_by())
    app_labels = {
        content_type_id: ContentType.objects.get_for_id(content_type_id).app_label
        for content_type_id in {content_type_id for content_type_id, _ in rows}
    }
    return {f"{app_labels[content_type_id]}.{codename}" for content_type_id, codename in rows}


class PermissionReadingBackend(ModelBackend):
    """ModelBackend whose user and group permissions avoid the cross-collection projection."""

    def _get_user_permissions(self, user_obj):
        through = get_user_model().user_permissions.through
        ids = through.objects.filter(user_id=user_obj.pk).values_list("permission_id", flat=True)
        return Permission.objects.filter(pk__in=list(ids))

    def _get_group_permissions(self, user_obj):
        user_groups = get_user_model().groups.through
        group_ids = list(user_groups.objects.filter(user_id=user_obj.pk).values_list("group_id", flat=True))
        if not group_ids:
            return Permission.objects.none()
        group_permissions = Group.permissions.through
        ids = group_permissions.objects.filter(group_id__in=group_ids).values_list("permission_id", flat=True)
        return Permission.objects.filter(pk__in=list(ids))

    def _get_permissions(self, user_obj, obj, from_name):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        cache_name = f"_{from_name}_perm_cache"
        if not hasattr(user_obj, cache_name):
            if user_obj.is_superuser:
                permissions = Permission.objects.all()
            else:
                permissions = getattr(self, f"_get_{from_name}_permissions")(user_obj)
            setattr(user_obj, cache_name, _permission_names(permissions))
        return getattr(user_obj, cache_name)
