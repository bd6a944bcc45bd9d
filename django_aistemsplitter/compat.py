"""Small shims over the Django (4.2 to 6.x) and Python (3.10 to 3.13) versions we support.

Nothing here reads settings, so the settings-free client may import it too.
"""

from __future__ import annotations

from datetime import datetime, timezone

from django.db import models
from django.utils.dateparse import parse_datetime

# CheckConstraint's "check" argument was renamed "condition" in Django 5.1 and
# the old name removed in 6.0.
_CONDITION_KW = (
    "condition" if "condition" in models.CheckConstraint.__init__.__code__.co_varnames else "check"
)


def check_constraint(condition: models.Q, name: str) -> models.CheckConstraint:
    return models.CheckConstraint(**{_CONDITION_KW: condition}, name=name)  # type: ignore[arg-type]


def parse_iso_datetime(value: str) -> datetime | None:
    """ISO 8601 text -> datetime normalised to UTC (naive input is taken as UTC); junk -> None.

    Python 3.10's ``datetime.fromisoformat`` rejects a trailing ``Z`` and fractions of
    second that are not 3 or 6 digits (``...06.5+00:00``), both of which 3.11+ accepts.
    Django's ``parse_datetime`` tries ``fromisoformat`` first and falls back to a regex
    covering those forms, so every Python we support reads the same timestamps.
    """
    try:
        parsed = parse_datetime(value)
    except ValueError:  # well formed but impossible, e.g. month 13
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)
