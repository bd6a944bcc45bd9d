"""Celery beat entries for the package's periodic work.

Add them to your app's schedule, e.g.::

    from django_aistemsplitter.celery_schedule import beat_schedule
    app.conf.beat_schedule = {**app.conf.beat_schedule, **beat_schedule()}

Reconciliation is the safety net for lost webhooks, lost poll chains and
workers that died mid-task; without beat, run ``manage.py reconcile_splits``
from cron every ``RECONCILE_INTERVAL`` seconds instead.
"""

from __future__ import annotations

from typing import Any

from django_aistemsplitter.conf import get_setting

RECONCILE_TASK = "django_aistemsplitter.tasks.reconcile_splits"


def beat_schedule() -> dict[str, dict[str, Any]]:
    """``{"aistemsplitter-reconcile": {...}}`` every ``RECONCILE_INTERVAL`` seconds."""
    entry: dict[str, Any] = {
        "task": RECONCILE_TASK,
        "schedule": float(get_setting("RECONCILE_INTERVAL")),
    }
    queue = get_setting("TASK_QUEUE")
    if queue:
        entry["options"] = {"queue": queue}
    return {"aistemsplitter-reconcile": entry}
