"""What a split is expected to cost on the hosted service, from its audio duration.

The service bills per minute of audio; ``PRICE_PER_MINUTE`` is the account's rate.
The estimate is shown before and while a job runs; ``credits_used`` from the
service is the real figure once known. Jobs of in-process backends cost no money.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django_aistemsplitter.backends import BaseBackend, InProcessBackend, get_backend_class
from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.exceptions import ConfigurationError

if TYPE_CHECKING:
    from django_aistemsplitter.models import SplitJob

__all__ = [
    "ENGINE_SECONDS_KEY",
    "backend_class",
    "engine_seconds",
    "estimate_cost",
    "price_per_minute",
    "runs_in_process",
]

#: Where an in-process split's engine time (seconds) is kept in ``SplitJob.metadata``.
ENGINE_SECONDS_KEY = "engine_seconds"


def price_per_minute() -> Decimal:
    """``PRICE_PER_MINUTE`` as a Decimal (settings may hold a string or a number)."""
    return Decimal(str(get_setting("PRICE_PER_MINUTE")))


def estimate_cost(duration_seconds: float | None) -> Decimal | None:
    """``PRICE_PER_MINUTE`` x audio minutes, to 4 decimals; None without a duration."""
    if duration_seconds is None:
        return None
    minutes = Decimal(str(duration_seconds)) / Decimal(60)
    return (minutes * price_per_minute()).quantize(Decimal("0.0001"))


def backend_class(job: SplitJob) -> type[BaseBackend] | None:
    """The class of the backend that ran ``job``; None when it can no longer be loaded."""
    try:
        return get_backend_class(job.backend)
    except ConfigurationError:
        return None


def runs_in_process(job: SplitJob) -> bool:
    """Whether ``job`` ran in a worker of ours (no service, so no money and no webhooks)."""
    cls = backend_class(job)
    return cls is not None and issubclass(cls, InProcessBackend)


def engine_seconds(job: SplitJob) -> float | None:
    """The engine time an in-process split took, when the job recorded it."""
    value = (job.metadata or {}).get(ENGINE_SECONDS_KEY)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
