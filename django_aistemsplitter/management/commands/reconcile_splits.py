"""``manage.py reconcile_splits``: nudge stuck split jobs, as the periodic task does.

Useful from cron when Celery beat is not running, or by hand after an outage.
``--older-than`` overrides ``RECONCILE_AFTER`` for this run.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.steps import reconcile


class Command(BaseCommand):
    help = "Refresh, resubmit or re-download split jobs stuck in a non-terminal status."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=float,
            default=None,
            help="seconds a job must have been unchanged (default: RECONCILE_AFTER)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        older_than = options["older_than"]
        counts = reconcile(older_than=older_than)
        total = sum(counts.values())
        after = get_setting("RECONCILE_AFTER") if older_than is None else older_than
        details = ", ".join(f"{k} {v}" for k, v in counts.items())
        self.stdout.write(f"{total} stuck job(s) nudged (older than {after}s): {details}")
