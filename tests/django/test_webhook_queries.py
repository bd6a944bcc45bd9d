"""What one webhook delivery costs in SQL statements, on PostgreSQL.

The receiver's cost per delivery is its round trips (``docs/topics/benchmarks.md``,
``webhook_queries``): a new event is looked up, inserted with its job and outcome
at once (``INSERT ... ON CONFLICT DO NOTHING``) and applied to the job, in one
transaction without a savepoint. These tests pin the exact statements of a new
delivery, a duplicate and an unknown-job delivery, so a change that adds a round
trip (or a savepoint) shows here, and check that the cheaper path keeps what the
receiver promises: one row, the job moved, one ingest queued on commit.

The tests run outside a test transaction (``transaction=True``) so ``BEGIN`` and
``COMMIT`` are the delivery's own, as in production.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import include, path

from django_aistemsplitter import contract
from django_aistemsplitter.models import SplitJob, SplitStatus, WebhookEvent
from tests.django import test_webhooks as webhooks
from tests.django.test_webhooks import FakeTasks, full_event, make_job, post

# The receiver's fixtures: recording fakes for the Celery boundary, the signing
# settings (autouse), and the PostgreSQL guard.
tasks = webhooks.tasks
webhook_settings = webhooks.webhook_settings
postgres_only = webhooks.postgres_only

urlpatterns = [path("aistemsplitter/", include("django_aistemsplitter.urls"))]

pytestmark = [
    pytest.mark.urls(__name__),
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]


def statements(captured: CaptureQueriesContext) -> list[str]:
    """The first word of every statement sent (``BEGIN``, ``SELECT``, ``SAVEPOINT``, ...)."""
    return [q["sql"].lstrip().split(None, 1)[0].upper() for q in captured.captured_queries]


def deliver(client: Client, payload: dict[str, Any]) -> tuple[Any, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = post(client, payload)
    return response, statements(captured)


def test_new_delivery_is_five_statements_without_savepoint(
    postgres_only: None, client: Client, tasks: FakeTasks
) -> None:
    job = make_job(SplitStatus.PROCESSING)
    response, sent = deliver(client, full_event(contract.SUCCEEDED))
    assert response.status_code == 200, response.content
    assert response.json() == {"received": True, "outcome": "processed"}
    # Look the job up, insert the event with its job and outcome, claim the ingest.
    assert sent == ["BEGIN", "SELECT", "INSERT", "UPDATE", "COMMIT"]
    row = WebhookEvent.objects.get()
    assert (row.job_id, row.outcome, row.deliveries) == (job.pk, "processed", 1)
    assert row.processed_at is not None
    job.refresh_from_db()
    assert job.status == SplitStatus.DOWNLOADING
    assert job.progress == 1.0
    assert tasks.ingest_split.calls == [(str(job.pk),)]  # sent once, after the commit


def test_duplicate_delivery_is_counted_in_six_statements(
    postgres_only: None, client: Client, tasks: FakeTasks
) -> None:
    job = make_job(SplitStatus.PROCESSING)
    assert post(client, full_event()).json()["outcome"] == "processed"
    before = SplitJob.objects.values().get(pk=job.pk)
    response, sent = deliver(client, full_event())
    assert response.status_code == 200, response.content
    assert response.json()["outcome"] == "duplicate"
    # The insert does nothing; the row is counted and locked; no savepoint.
    assert sent == ["BEGIN", "SELECT", "INSERT", "UPDATE", "SELECT", "COMMIT"]
    row = WebhookEvent.objects.get()
    assert (row.outcome, row.deliveries) == ("processed", 2)
    assert SplitJob.objects.values().get(pk=job.pk) == before
    assert tasks.ingest_split.calls == [(str(job.pk),)]


def test_unknown_job_delivery_is_four_statements(
    postgres_only: None, client: Client, tasks: FakeTasks
) -> None:
    response, sent = deliver(client, full_event(split_id="split_nobody_knows"))
    assert response.status_code == 200, response.content
    assert response.json()["outcome"] == "unknown_job"
    assert sent == ["BEGIN", "SELECT", "INSERT", "COMMIT"]
    row = WebhookEvent.objects.get()
    assert (row.job_id, row.outcome, row.remote_id) == (None, "unknown_job", "split_nobody_knows")
    assert tasks.ingest_split.calls == []


def test_redelivery_after_an_error_is_processed_again(
    postgres_only: None, client: Client, tasks: FakeTasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure path: the new delivery's writes roll back, the row says ``error``."""
    import django_aistemsplitter.jobs as jobs

    job = make_job(SplitStatus.PROCESSING)
    real_mirror = jobs.mirror

    def broken_mirror(*args: Any, **kwargs: Any) -> Any:
        real_mirror(*args, **kwargs)  # its UPDATE must not survive
        raise RuntimeError("mirror bug")

    monkeypatch.setattr(jobs, "mirror", broken_mirror)
    response, _sent = deliver(client, full_event())
    assert response.status_code == 500
    assert response.json() == {"received": False, "outcome": "error"}
    row = WebhookEvent.objects.get()
    assert (row.outcome, row.deliveries, row.processed_at) == ("error", 1, None)
    job.refresh_from_db()
    assert job.status == SplitStatus.PROCESSING  # rolled back with the failed delivery
    assert tasks.ingest_split.calls == []

    monkeypatch.setattr(jobs, "mirror", real_mirror)
    response, sent = deliver(client, full_event())
    assert response.json()["outcome"] == "processed"
    assert "SAVEPOINT" in sent  # reprocessing a stored row keeps its savepoint
    row.refresh_from_db()
    assert (row.outcome, row.deliveries, row.job_id) == ("processed", 2, job.pk)
    assert tasks.ingest_split.calls == [(str(job.pk),)]
