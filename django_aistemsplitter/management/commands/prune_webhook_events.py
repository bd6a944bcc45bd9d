"""``manage.py prune_webhook_events [--days N] [--dry-run]``.

Deletes recorded webhook deliveries received more than ``N`` days ago (default:
``AISTEMSPLITTER["WEBHOOK_RETENTION_DAYS"]``). Run it daily from cron or Celery beat.
Deduplication only needs rows for as long as the service may redeliver an event
(hours), so the retention is about keeping an audit trail, not correctness.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.models import WebhookEvent


class Command(BaseCommand):
    help = "Delete recorded webhook deliveries older than the retention period."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="Keep deliveries of the last N days (default: WEBHOOK_RETENTION_DAYS).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Only count what would be deleted.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if days is None:
            days = get_setting("WEBHOOK_RETENTION_DAYS")
        if not isinstance(days, int) or isinstance(days, bool) or days < 0:
            raise CommandError(f"The retention must be a whole number of days >= 0, not {days!r}.")
        cutoff = timezone.now() - timedelta(days=days)
        old = WebhookEvent.objects.filter(received_at__lt=cutoff)
        if options["dry_run"]:
            count = old.count()
            self.stdout.write(
                f"Would delete {count} webhook event(s) received before {cutoff:%Y-%m-%d %H:%M} "
                f"UTC (older than {days} day(s))."
            )
            return
        count, _ = old.delete()
        self.stdout.write(
            self.style.SUCCESS(f"Deleted {count} webhook event(s) older than {days} day(s).")
        )
