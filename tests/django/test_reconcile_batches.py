"""Reconcile works in bounded batches, and two runs at once never take the same job.

Issue 14, item 5, on PostgreSQL: one run looks at no more than
``RECONCILE_BATCH_SIZE`` jobs, which it locks with ``SELECT ... FOR UPDATE SKIP
LOCKED``, so a backlog drains over successive runs with a bounded number of
queries each, and a second run that starts while the first holds its batch
takes the next jobs instead of the same ones (or waiting).
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_aistemsplitter import steps
from django_aistemsplitter.dispatch import Step
from django_aistemsplitter.models import SplitJob, SplitStatus
from tests.django.test_ingest_lock import sent_fixture  # noqa: F401 - the fixture "sent"

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED and row locks are PostgreSQL's")


@pytest.fixture
def reconcile_settings(settings: Any) -> dict[str, Any]:
    settings.AISTEMSPLITTER = {
        "BACKEND": "hosted",
        "API_KEY": "ast_test_key",
        "TASK_QUEUE": "nowhere-never-consumed",
        "RECONCILE_AFTER": 60.0,
        "RECONCILE_BATCH_SIZE": 500,
    }
    return settings.AISTEMSPLITTER  # type: ignore[no-any-return]


def stale_jobs(count: int) -> list[str]:
    """``count`` submitted remote jobs, quiet for an hour (reconcile refreshes them)."""
    now = timezone.now()
    rows = [
        SplitJob(
            stem_model="htdemucs_ft",
            backend="hosted",
            remote_id=f"split_{uuid.uuid4().hex}",
            status=SplitStatus.SUBMITTED,
            source_url="https://example.com/song.mp3",
            submitted_at=now,
        )
        for _ in range(count)
    ]
    SplitJob.objects.bulk_create(rows, batch_size=500)
    SplitJob.objects.update(updated_at=now - timedelta(hours=1))
    return [str(row.pk) for row in rows]


def test_a_backlog_drains_in_batches_with_bounded_queries(
    reconcile_settings: dict[str, Any], sent: list[tuple[Step, str]]
) -> None:
    ids = stale_jobs(1200)
    per_run: list[int] = []
    queries: list[int] = []
    for _ in range(4):
        before = len(sent)
        with CaptureQueriesContext(connection) as captured:
            counts = steps.reconcile()
        queries.append(len(captured.captured_queries))
        per_run.append(len(sent) - before)
        assert counts["refreshed"] == per_run[-1]
    assert per_run == [500, 500, 200, 0]
    # Every job nudged once, whatever the batch it fell in.
    assert sorted(job_id for _, job_id in sent) == sorted(ids)
    assert {step for step, _ in sent} == {Step.REFRESH}
    # A constant number of queries per run, not one (or more) per job.
    assert max(queries) <= 12, queries
    assert set(SplitJob.objects.values_list("reconcile_attempts", flat=True)) == {1}


@contextmanager
def holding_its_batch(claimed: threading.Event, release: threading.Event) -> Iterator[None]:
    """Stop this thread's reconcile when it claims its batch, until ``release``.

    The claim is the UPDATE that counts ``reconcile_attempts``: from then on the
    run holds its batch (locked rows, an open transaction) until it commits.
    """

    def wrapper(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        result = execute(sql, *args)
        if sql.lstrip().upper().startswith("UPDATE") and "reconcile_attempts" in sql:
            claimed.set()
            assert release.wait(120), "the test never released the first run"
        return result

    with connection.execute_wrapper(wrapper):
        yield


def test_two_runs_at_once_take_disjoint_batches(
    reconcile_settings: dict[str, Any], sent: list[tuple[Step, str]]
) -> None:
    ids = stale_jobs(1000)
    claimed, release = threading.Event(), threading.Event()
    first: dict[str, int] = {}
    errors: list[BaseException] = []

    def first_run() -> None:
        try:
            with holding_its_batch(claimed, release):
                first.update(steps.reconcile())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=first_run, daemon=True)
    thread.start()
    while not claimed.wait(0.05):
        assert thread.is_alive(), f"the first run ended without holding a batch: {errors}"
    with connection.cursor() as cursor:  # waiting for the first run's rows is a failure
        cursor.execute("SET lock_timeout = '2s'")
    try:
        second = steps.reconcile()
        second_ids = [job_id for _, job_id in sent]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
        release.set()
        thread.join(120)
    assert errors == []
    first_ids = [job_id for _, job_id in sent][len(second_ids) :]
    assert (first["refreshed"], second["refreshed"]) == (500, 500)
    assert len(set(first_ids)) == len(set(second_ids)) == 500
    assert set(first_ids).isdisjoint(second_ids)
    assert sorted(first_ids + second_ids) == sorted(ids)


def test_the_command_takes_a_batch_size(
    reconcile_settings: dict[str, Any], sent: list[tuple[Step, str]]
) -> None:
    stale_jobs(3)
    out = io.StringIO()
    call_command("reconcile_splits", batch_size=2, stdout=out)
    assert len(sent) == 2
    assert "2 stuck job(s) nudged" in out.getvalue()
    call_command("reconcile_splits", stdout=out)
    assert len(sent) == 3


def test_overdue_jobs_count_against_the_batch(
    reconcile_settings: dict[str, Any], sent: list[tuple[Step, str]], settings: Any
) -> None:
    """Failing jobs past JOB_TIMEOUT is batched too: 7 overdue, batch 5 -> 5, then 2."""
    settings.AISTEMSPLITTER = {**reconcile_settings, "RECONCILE_BATCH_SIZE": 5}
    stale_jobs(7)
    SplitJob.objects.update(submitted_at=timezone.now() - timedelta(days=2))
    assert steps.reconcile()["timed_out"] == 5
    assert steps.reconcile()["timed_out"] == 2
    assert SplitJob.objects.filter(status=SplitStatus.FAILED, error_code="JOB_TIMEOUT").count() == 7
    assert sent == []


def test_a_beat_run_expires_after_one_interval(settings: Any) -> None:
    """Runs stacked up behind busy workers are dropped, not run back to back."""
    from django_aistemsplitter.celery_schedule import RECONCILE_TASK, beat_schedule

    settings.AISTEMSPLITTER = {"RECONCILE_INTERVAL": 42.0, "TASK_QUEUE": "q"}
    entry = beat_schedule()["aistemsplitter-reconcile"]
    assert entry == {
        "task": RECONCILE_TASK,
        "schedule": 42.0,
        "options": {"expires": 42.0, "queue": "q"},
    }


def test_jobs_whose_backend_cannot_load_do_not_fill_every_batch(
    reconcile_settings: dict[str, Any], sent: list[tuple[Step, str]], settings: Any
) -> None:
    settings.AISTEMSPLITTER = {**reconcile_settings, "RECONCILE_BATCH_SIZE": 2}
    stale_jobs(3)
    jobs = list(SplitJob.objects.order_by("pk"))
    broken, good = jobs[:2], jobs[2]
    SplitJob.objects.filter(pk__in=[j.pk for j in broken]).update(
        backend="tests.nowhere.MissingBackend", updated_at=timezone.now() - timedelta(hours=2)
    )
    assert not any(steps.reconcile().values())  # the two oldest: nothing can move them
    assert steps.reconcile()["refreshed"] == 1  # they went to the back of the queue
    assert sent == [(Step.REFRESH, str(good.pk))]
    assert set(
        SplitJob.objects.filter(pk__in=[j.pk for j in broken]).values_list(
            "reconcile_attempts", "status"
        )
    ) == {(0, SplitStatus.SUBMITTED)}
