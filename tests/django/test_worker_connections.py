"""A worker that keeps its database connections between tasks, and survives losing them.

Celery's Django fixup closes every connection before and after every task unless
``CELERY_DB_REUSE_MAX`` is set; docs/topics/celery.md recommends setting it (with
``CONN_MAX_AGE`` and ``CONN_HEALTH_CHECKS``): a job runs about six tasks, and six
new PostgreSQL connections per job were a third of the machine's work in
``bench/run.py``'s throughput figures. The app's tasks then close old connections
as Django does around a request, so a connection the database dropped (a
restart, a failover) is replaced before the next task uses it.

A real worker (threads pool), Redis and PostgreSQL; the database drops the
worker's connections with ``pg_terminate_backend``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection

from django_aistemsplitter import services
from django_aistemsplitter.models import SplitJob
from tests.services import POSTGRES, require
from tests.settings import KEEP_CONNECTIONS_ENV
from tests.waiting import wait_for
from tests.worker import WorkerProcess

pytestmark = [pytest.mark.worker, pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def _worker_backends() -> set[int]:
    """Process ids of the other sessions on the test database: the worker's."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {row[0] for row in cursor.fetchall()}


def _split_and_wait(wav_file: Path) -> SplitJob:
    job = services.split(wav_file)

    def done() -> bool:
        job.refresh_from_db()
        return job.is_terminal

    wait_for(done, what="the job to finish")
    return job


def test_connections_are_kept_between_tasks_and_replaced_when_the_database_drops_them(
    worker_factory: Callable[..., WorkerProcess], wav_file: Path
) -> None:
    require(POSTGRES)
    # One thread: one connection to follow (each thread of a pool has its own).
    worker_factory(
        {"BACKEND": "local", "ENGINE": "passthrough"},
        extra_env={KEEP_CONNECTIONS_ENV: "1"},
        concurrency=1,
    )
    first = _split_and_wait(wav_file)
    assert first.status == SplitJob.Status.SUCCEEDED, first.error_message
    wait_for(lambda: bool(_worker_backends()), what="the worker's kept connection")
    kept = _worker_backends()

    for _ in range(2):
        job = _split_and_wait(wav_file)
        assert job.status == SplitJob.Status.SUCCEEDED, job.error_message
    # The same sessions served the later jobs' tasks: no connection per task.
    assert _worker_backends() <= kept

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [list(kept)]
        )
    wait_for(lambda: not (_worker_backends() & kept), what="the sessions to end")
    after = _split_and_wait(wav_file)
    assert after.status == SplitJob.Status.SUCCEEDED, (after.error_code, after.error_message)
    assert after.stems.count() == 4
    assert _worker_backends() and not (_worker_backends() & kept)
