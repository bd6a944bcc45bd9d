"""Who may touch a split job through the API: its owner, or staff."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class IsOwnerOrStaff(BasePermission):
    """Object-level check behind the queryset filter (``SplitJob.objects.visible_to``).

    The view's queryset already hides other users' jobs, so they answer 404 rather
    than 403 (whether a job exists is nobody else's business); this permission is
    the second lock on the same door.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated)

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        user = request.user
        if getattr(user, "is_staff", False):
            return True
        return obj.owner_id is not None and obj.owner_id == getattr(user, "pk", None)
