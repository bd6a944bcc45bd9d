"""Small shims over the Django (4.2 to 6.x) and Python (3.10 to 3.13) versions we support.

Nothing here reads settings. (The API client parses its timestamps itself: it
must import without Django.)
"""

from __future__ import annotations

from django.db import models

# CheckConstraint's "check" argument was renamed "condition" in Django 5.1 and
# the old name removed in 6.0.
_CONDITION_KW = (
    "condition" if "condition" in models.CheckConstraint.__init__.__code__.co_varnames else "check"
)


def check_constraint(condition: models.Q, name: str) -> models.CheckConstraint:
    return models.CheckConstraint(**{_CONDITION_KW: condition}, name=name)  # type: ignore[arg-type]
