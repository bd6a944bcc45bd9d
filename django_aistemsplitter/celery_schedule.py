"""Celery beat entries for the package's periodic work.

Add them to your app's schedule, e.g.::

    from django_aistemsplitter.celery_schedule import beat_schedule
    app.conf.beat_schedule = {**app.conf.beat_schedule, **beat_schedule()}

Reconciliation is the safety net for lost webhooks, lost poll chains and
workers that died mid-task; without beat, run ``manage.py reconcile_splits``
from cron every ``RECONCILE_INTERVAL`` seconds instead.

Each run looks at ``RECONCILE_BATCH_SIZE`` jobs at most, so a backlog drains a
batch per interval. A run's message expires after one interval: when the
workers are behind, stale runs are dropped rather than executed back to back
(the next one is already scheduled), which would turn the backlog into a burst.
"""

from __future__ import annotations

from typing import Any

from django_aistemsplitter.conf import get_setting

RECONCILE_TASK = "django_aistemsplitter.tasks.reconcile_splits"


def beat_schedule() -> dict[str, dict[str, Any]]:
    """``{"aistemsplitter-reconcile": {...}}`` every ``RECONCILE_INTERVAL`` seconds.

    The message expires after one interval (see the module docstring).
    """
    interval = float(get_setting("RECONCILE_INTERVAL"))
    options: dict[str, Any] = {"expires": interval}
    queue = get_setting("TASK_QUEUE")
    if queue:
        options["queue"] = queue
    return {
        "aistemsplitter-reconcile": {
            "task": RECONCILE_TASK,
            "schedule": interval,
            "options": options,
        }
    }
