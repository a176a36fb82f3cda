"""What the apps' admins share."""

from __future__ import annotations


class ReadOnlyAdminMixin:
    """For records the services or commands write: staff see them, the admin never writes them.

    No add, change or delete. A model whose one admin write goes through a service opens just
    that door: ``allow_add`` (the points adjustment) or ``allow_delete`` (a study session's
    deletion, which takes back its points). Django's own permission checks still apply to it.
    Put it before ``admin.ModelAdmin`` in the bases.
    """

    allow_add = False
    allow_delete = False

    def has_add_permission(self, request) -> bool:
        return self.allow_add and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.allow_delete and super().has_delete_permission(request, obj)
