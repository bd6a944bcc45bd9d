"""Throttling of the API actions that start paid work.

Every split costs compute or credits, and so does every retry: a retried job is
sent again as a new remote split. Both actions count against one scope,
``aistemsplitter_create``, so cancelling and retrying a job cannot go faster than
creating new ones. (The API has no "split again" action; the admin's bulk
actions that start work are for staff with the change permission and are not
throttled.)

Asking for a direct-upload ticket (``POST /splits/uploads/``) counts in the same
scope: a ticket reserves up to ``MAX_UPLOAD_BYTES`` of storage (or of the
service's uploads) before any split exists, so it is rationed like one. A direct
upload thus costs two requests of the scope (the ticket, then the split).

The rate comes from
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["aistemsplitter_create"]`` and
defaults to :data:`DEFAULT_CREATE_RATE`; set it to ``None`` to disable.
"""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle

CREATE_SCOPE = "aistemsplitter_create"
DEFAULT_CREATE_RATE = "60/hour"

#: The viewset actions that start paid work, throttled together in :data:`CREATE_SCOPE`.
PAID_ACTIONS = frozenset({"create", "retry"})

#: Every viewset action counted in :data:`CREATE_SCOPE`: paid work, and upload tickets.
CREATE_SCOPE_ACTIONS = PAID_ACTIONS | {"upload_ticket"}


class SplitCreateRateThrottle(UserRateThrottle):
    """Per user (per IP when anonymous) rate of the actions in :data:`CREATE_SCOPE_ACTIONS`."""

    scope = CREATE_SCOPE

    def get_rate(self) -> str | None:
        # Read the settings at request time (DRF's class attribute is frozen at
        # import), so override_settings and late configuration take effect.
        rates = api_settings.DEFAULT_THROTTLE_RATES or {}
        if self.scope in rates:
            rate = rates[self.scope]
            return None if rate is None else str(rate)
        return DEFAULT_CREATE_RATE
