"""Throttling of split creation: each split costs compute or credits.

The rate of scope ``aistemsplitter_create`` comes from
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["aistemsplitter_create"]`` and
defaults to :data:`DEFAULT_CREATE_RATE`; set it to ``None`` to disable.
"""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle

CREATE_SCOPE = "aistemsplitter_create"
DEFAULT_CREATE_RATE = "60/hour"


class SplitCreateRateThrottle(UserRateThrottle):
    """Per user (per IP when anonymous) rate of ``POST /splits/``."""

    scope = CREATE_SCOPE

    def get_rate(self) -> str | None:
        # Read the settings at request time (DRF's class attribute is frozen at
        # import), so override_settings and late configuration take effect.
        rates = api_settings.DEFAULT_THROTTLE_RATES or {}
        if self.scope in rates:
            rate = rates[self.scope]
            return None if rate is None else str(rate)
        return DEFAULT_CREATE_RATE
