"""``manage.py prune_webhook_events``: deletes old deliveries, keeps recent ones."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from django_aistemsplitter.models import WebhookEvent


def make_event(event_id: str, age_days: float) -> WebhookEvent:
    row = WebhookEvent.objects.create(
        event_id=event_id, type="split.succeeded", remote_id="split_x", payload={"id": event_id}
    )
    # received_at is auto_now_add: backdate it with an UPDATE.
    WebhookEvent.objects.filter(pk=row.pk).update(
        received_at=timezone.now() - timedelta(days=age_days)
    )
    return row


def remaining() -> list[str]:
    return sorted(WebhookEvent.objects.values_list("event_id", flat=True))


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("prune_webhook_events", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def events(settings: Any) -> None:
    settings.AISTEMSPLITTER = {"WEBHOOK_RETENTION_DAYS": 30}
    make_event("evt_new", 1)
    make_event("evt_29d", 29)
    make_event("evt_31d", 31)
    make_event("evt_400d", 400)


@pytest.mark.django_db
def test_default_retention_deletes_old_and_keeps_recent(events: None) -> None:
    output = run()
    assert remaining() == ["evt_29d", "evt_new"]
    assert "Deleted 2 webhook event(s) older than 30 day(s)" in output


@pytest.mark.django_db
def test_retention_setting_is_read(events: None, settings: Any) -> None:
    settings.AISTEMSPLITTER = {"WEBHOOK_RETENTION_DAYS": 365}
    run()
    assert remaining() == ["evt_29d", "evt_31d", "evt_new"]


@pytest.mark.django_db
def test_days_option_overrides_setting(events: None) -> None:
    output = run("--days", "7")
    assert remaining() == ["evt_new"]
    assert "Deleted 3" in output


@pytest.mark.django_db
def test_dry_run_deletes_nothing(events: None) -> None:
    output = run("--dry-run")
    assert remaining() == ["evt_29d", "evt_31d", "evt_400d", "evt_new"]
    assert "Would delete 2 webhook event(s)" in output


@pytest.mark.django_db
def test_nothing_to_delete(settings: Any) -> None:
    make_event("evt_new", 0)
    assert "Deleted 0" in run()
    assert remaining() == ["evt_new"]


@pytest.mark.django_db
def test_negative_days_is_refused(events: None) -> None:
    with pytest.raises(CommandError, match="days"):
        run("--days", "-1")
    assert len(remaining()) == 4
