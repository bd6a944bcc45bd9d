"""``manage.py reconcile_splits``: nudge stuck split jobs, as the periodic task does.

Useful from cron when Celery beat is not running, or by hand after an outage.
``--older-than`` overrides ``RECONCILE_AFTER`` for this run, ``--batch-size``
``RECONCILE_BATCH_SIZE`` (the most jobs one run looks at: a larger backlog
drains over the next runs; two runs at once never take the same job). Like the
periodic task, it also deletes what expired, unused upload tickets left behind
(:func:`~django_aistemsplitter.tickets.purge_expired`).
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.steps import reconcile, reconcile_batch_size
from django_aistemsplitter.tickets import purge_expired


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, not {value!r}")
    return number


class Command(BaseCommand):
    help = "Refresh, resubmit or re-download split jobs stuck in a non-terminal status."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=float,
            default=None,
            help="seconds a job must have been unchanged (default: RECONCILE_AFTER)",
        )
        parser.add_argument(
            "--batch-size",
            type=_positive_int,
            default=None,
            help="most jobs this run looks at (default: RECONCILE_BATCH_SIZE)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        older_than = options["older_than"]
        batch_size = options["batch_size"]
        counts = reconcile(older_than=older_than, batch_size=batch_size)
        total = sum(counts.values())
        after = get_setting("RECONCILE_AFTER") if older_than is None else older_than
        details = ", ".join(f"{k} {v}" for k, v in counts.items())
        self.stdout.write(
            f"{total} stuck job(s) nudged (older than {after}s, "
            f"at most {reconcile_batch_size(batch_size)} per run): {details}"
        )
        purged = purge_expired()
        self.stdout.write(
            f"{purged['upload_tickets_purged']} expired upload ticket(s) purged, "
            f"{purged['upload_tickets_used_deleted']} used one(s) forgotten"
        )
