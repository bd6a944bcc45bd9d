"""Who may touch a split job through the API: its owner, or a user with the model permission.

As in the admin, Django's model permissions decide, not ``is_staff``:
``aistemsplitter.view_splitjob`` (or ``change_splitjob``) to see other users' jobs
and download their stems, ``aistemsplitter.change_splitjob`` to retry or cancel
them (see :func:`~django_aistemsplitter.models.may_handle_every_job`).
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from django_aistemsplitter.models import may_handle_every_job


class IsOwnerOrPermitted(BasePermission):
    """Object-level check behind the queryset filter (``SplitJob.objects.visible_to``).

    The view's queryset already hides other users' jobs from whoever may not view
    them, so those answer 404 rather than 403 (whether a job exists is nobody
    else's business); this permission is the second lock on the same door, and the
    one that keeps a viewer without the change permission from retrying or
    cancelling another user's job (403).
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated)

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        user = request.user
        if obj.owner_id is not None and obj.owner_id == getattr(user, "pk", None):
            return True
        action = "view" if request.method in SAFE_METHODS else "change"
        return may_handle_every_job(user, action)
