"""Celery tasks that move split jobs along.

Every task takes a job's primary key (a string UUID, never a model instance:
the row may have changed by the time the task runs), re-reads the job, and is
idempotent, because Celery delivers at least once (``acks_late``: a task whose
worker died is delivered again) and webhooks, polls and reconciliation may ask
for the same work twice:

* ``submit_split`` sends the job's idempotency key, so a replay returns the
  same remote split; the unique (backend, remote id) constraint backs it;
* ``ingest_split`` stores stems under a row lock and checks the status first;
* status changes go through ``SplitJob.advance`` (forward only).

Transient failures (rate limits, 5xx, broken connections, short downloads) are
retried with exponential backoff up to ``TASK_MAX_RETRIES``; anything else, or
running out of retries, fails the job with a code and a message.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from celery import shared_task
from celery.app.task import Task
from django.db import DatabaseError, transaction
from django.utils import timezone

from django_aistemsplitter import contract
from django_aistemsplitter.backends import BaseBackend, InProcessBackend, RemoteBackend, get_backend
from django_aistemsplitter.client.types import Split
from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.exceptions import (
    AiStemSplitterError,
    APIError,
    NetworkError,
    NotFoundError,
    RateLimitError,
    ServerError,
)
from django_aistemsplitter.ingest import (
    IncompleteDownloadError,
    commit_stems,
    remove_dir,
    stage_local_files,
    stage_remote_stems,
    staging_dir,
)
from django_aistemsplitter.jobs import apply_remote_split, estimate_cost, fail, mark_submitted
from django_aistemsplitter.models import SplitJob, SplitStatus

logger = logging.getLogger(__name__)

__all__ = [
    "enqueue",
    "enqueue_on_commit",
    "ingest_split",
    "poll_split",
    "reconcile_splits",
    "refresh_split",
    "submit_split",
]

#: Worth another try later; everything else fails the job at once.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    RateLimitError,
    ServerError,
    NetworkError,
    IncompleteDownloadError,
    httpx.TransportError,
    DatabaseError,
)


# --- enqueueing -----------------------------------------------------------------


def enqueue(task: Task, *args: Any, countdown: float | None = None, **kwargs: Any) -> None:
    """Send ``task`` to the configured ``TASK_QUEUE`` (the default queue when None)."""
    options: dict[str, Any] = {}
    queue = get_setting("TASK_QUEUE")
    if queue:
        options["queue"] = queue
    if countdown:
        options["countdown"] = countdown
    task.apply_async(args=args, kwargs=kwargs or None, **options)


def enqueue_on_commit(task: Task, *args: Any, **kwargs: Any) -> None:
    """Enqueue once the current transaction commits, so the worker sees the rows.

    Outside a transaction Django runs the callback at once.
    """
    transaction.on_commit(lambda: enqueue(task, *args, **kwargs))


# --- helpers --------------------------------------------------------------------


def max_retries() -> int:
    return int(get_setting("TASK_MAX_RETRIES"))


def backoff(retries: int, exc: BaseException | None = None) -> float:
    """Exponential backoff with jitter, honouring a server's Retry-After."""
    hint = getattr(exc, "retry_after", None)
    base = min(
        float(get_setting("RETRY_BACKOFF_MAX")), float(get_setting("RETRY_BACKOFF")) * 2.0**retries
    )
    delay = base * (0.5 + random.random() / 2)
    return max(delay, float(hint)) if hint else delay


def _job(job_id: str) -> SplitJob | None:
    try:
        return SplitJob.objects.get(pk=job_id)
    except (SplitJob.DoesNotExist, ValueError):
        logger.warning("split job %s does not exist (deleted?); nothing to do", job_id)
        return None


def _error_code(exc: BaseException, default: str) -> str:
    code = getattr(exc, "code", None)
    return str(code) if code else default


def _retry_or_fail(task: Task, job: SplitJob, exc: BaseException, code: str) -> Any:
    """Retry a transient failure with backoff, or fail the job when out of retries."""
    retries = task.request.retries or 0
    if retries < max_retries():
        logger.info(
            "split job %s: transient %s (%s), retry %d",
            job.pk,
            type(exc).__name__,
            exc,
            retries + 1,
        )
        raise task.retry(exc=exc, countdown=backoff(retries, exc), max_retries=max_retries())
    fail(job, _error_code(exc, code), f"{exc} (gave up after {retries} retries)")
    return None


def _backend(job: SplitJob) -> BaseBackend:
    return get_backend(job.backend or None)


# --- tasks ----------------------------------------------------------------------


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def submit_split(self: Task, job_id: str) -> str:
    """pending -> submitted (remote) or all the way to succeeded (in-process)."""
    job = _job(job_id)
    if job is None:
        return "missing"
    backend = _backend(job)
    if isinstance(backend, InProcessBackend):
        return _run_locally(self, job, backend)
    assert isinstance(backend, RemoteBackend)
    if job.status != SplitStatus.PENDING:
        return f"skipped: already {job.status}"
    try:
        split = backend.submit(job)
    except TRANSIENT_ERRORS as exc:
        return _retry_or_fail(self, job, exc, "SUBMIT_FAILED") or "failed"
    except (APIError, AiStemSplitterError, ValueError) as exc:
        fail(job, _error_code(exc, "SUBMIT_FAILED"), str(exc))
        return "failed"
    mark_submitted(job, split)
    _replay_early_webhooks(job)
    apply_remote_split(job, split)
    if not split.is_terminal and not backend.uses_webhooks():
        enqueue_on_commit(poll_split, str(job.pk), 0, countdown=poll_delay(0))
    return f"submitted {job.remote_id}"


def _replay_early_webhooks(job: SplitJob) -> None:
    """Process webhooks that arrived before the remote id was stored (thin events).

    Full events find their job through the job id in the split's metadata; thin
    ones carry only the split id and were recorded as ``unknown_job``.
    """
    from django_aistemsplitter.webhooks import process_unmatched

    try:
        process_unmatched(job)
    except Exception:
        # Reconciliation refreshes the job later anyway; never fail the submit.
        logger.exception("split job %s: replaying early webhooks failed", job.pk)


def _progress_recorder(job: SplitJob) -> Callable[[float], None]:
    """Write engine progress to the job, at most every 5 percentage points."""
    last = [job.progress]

    def record(fraction: float) -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        if fraction - last[0] >= 0.05 or (fraction >= 1.0 > last[0]):
            last[0] = fraction
            job.advance(SplitStatus.PROCESSING, progress=fraction)

    return record


def _run_locally(task: Task, job: SplitJob, backend: InProcessBackend) -> str:
    """Separate in this worker and ingest the files directly.

    Safe to run twice: a finished job is skipped, and a second run racing the
    first loses at the locked commit and stores nothing.
    """
    if job.is_terminal:
        return f"skipped: already {job.status}"
    mark_submitted(job, Split(id="", status=contract.QUEUED))
    job.advance(SplitStatus.PROCESSING)
    try:
        result = backend.run(job, _progress_recorder(job))
    except TRANSIENT_ERRORS as exc:
        return _retry_or_fail(task, job, exc, "ENGINE_FAILED") or "failed"
    except (AiStemSplitterError, ValueError) as exc:
        fail(job, _error_code(exc, "ENGINE_FAILED"), str(exc))
        return "failed"
    try:
        duration = result.duration_seconds
        job.advance(
            SplitStatus.DOWNLOADING,
            progress=1.0,
            duration_seconds=duration,
            estimated_cost=estimate_cost(duration),
        )
        staged = stage_local_files(result.files)
        stored = commit_stems(job, staged)
    except TRANSIENT_ERRORS as exc:
        return _retry_or_fail(task, job, exc, "INGEST_FAILED") or "failed"
    except (AiStemSplitterError, ValueError) as exc:
        fail(job, _error_code(exc, "INGEST_FAILED"), str(exc))
        return "failed"
    finally:
        result.cleanup()
    return "succeeded" if stored else "skipped: finished elsewhere"


def poll_delay(polls_done: int) -> float:
    """``POLL_INTERVAL`` growing by half each poll, capped at ``POLL_MAX_INTERVAL``."""
    interval = float(get_setting("POLL_INTERVAL"))
    return float(min(interval * (1.5**polls_done), float(get_setting("POLL_MAX_INTERVAL"))))


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def poll_split(self: Task, job_id: str, polls_done: int = 0) -> str:
    """Without webhooks: GET the split, apply it, and poll again later until terminal."""
    job = _job(job_id)
    if job is None:
        return "missing"
    if job.is_terminal or job.status == SplitStatus.DOWNLOADING:
        return f"stopped: {job.status}"
    backend = _backend(job)
    if not isinstance(backend, RemoteBackend) or not job.remote_id:
        return "stopped: nothing to poll"
    started = job.submitted_at or job.created_at
    if timezone.now() - started > timedelta(seconds=float(get_setting("POLL_TIMEOUT"))):
        fail(job, "POLL_TIMEOUT", "the split did not finish within POLL_TIMEOUT")
        return "timed out"
    split = _fetch_and_apply(self, job, backend, "POLL_FAILED")
    if isinstance(split, str):
        return split
    if not split.is_terminal:
        enqueue_on_commit(poll_split, job_id, polls_done + 1, countdown=poll_delay(polls_done + 1))
    return split.status


def _fetch_and_apply(
    task: Task, job: SplitJob, backend: RemoteBackend, error_code: str
) -> Split | str:
    """GET the remote split and mirror it onto ``job``.

    Returns the split, or the task's outcome when fetching failed: a transient
    error schedules a retry (or fails the job once retries run out, recorded as
    ``error_code``), and a split the service no longer knows fails the job.
    """
    try:
        split = backend.fetch(job)
    except TRANSIENT_ERRORS as exc:
        return _retry_or_fail(task, job, exc, error_code) or "failed"
    except NotFoundError as exc:
        fail(job, "REMOTE_NOT_FOUND", str(exc))
        return "failed"
    apply_remote_split(job, split)
    return split


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def refresh_split(self: Task, job_id: str) -> str:
    """GET the split once and apply it (after a thin webhook, or from reconcile)."""
    job = _job(job_id)
    if job is None:
        return "missing"
    if job.is_terminal:
        return f"skipped: already {job.status}"
    backend = _backend(job)
    if not isinstance(backend, RemoteBackend):
        return "skipped: not remote"
    if not job.remote_id:
        if job.status == SplitStatus.PENDING:
            enqueue_on_commit(submit_split, job_id)
            return "resubmitted"
        return "skipped: no remote id"
    split = _fetch_and_apply(self, job, backend, "REFRESH_FAILED")
    return split if isinstance(split, str) else split.status


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def ingest_split(self: Task, job_id: str, force: bool = False) -> str:
    """Download every stem of a succeeded split into storage, all or nothing.

    The split is fetched again first: stem URLs are presigned and expire, and a
    fresh GET also tells whether the webhook that triggered us was stale.
    ``force`` re-downloads the stems of a job that already succeeded.
    """
    job = _job(job_id)
    if job is None:
        return "missing"
    if job.is_terminal and not (force and job.status == SplitStatus.SUCCEEDED):
        return f"skipped: already {job.status}"
    backend = _backend(job)
    if not isinstance(backend, RemoteBackend):
        return "skipped: stems of in-process backends are stored when they run"
    try:
        split = backend.fetch(job)
    except TRANSIENT_ERRORS as exc:
        return _retry_or_fail(self, job, exc, "INGEST_FAILED") or "failed"
    except (APIError, ValueError) as exc:
        fail(job, _error_code(exc, "INGEST_FAILED"), str(exc))
        return "failed"
    if split.status != contract.SUCCEEDED:
        if not force:
            apply_remote_split(job, split)
        return f"not ready: {split.status}"
    if not force and not job.advance(SplitStatus.DOWNLOADING, progress=1.0):
        job.refresh_from_db()
        if job.is_terminal:
            return f"skipped: already {job.status}"
    workdir = staging_dir()
    try:
        staged = stage_remote_stems(job, split.stems, workdir)
        stored = commit_stems(job, staged, replace=force)
    except TRANSIENT_ERRORS as exc:
        return _retry_or_fail(self, job, exc, "DOWNLOAD_FAILED") or "failed"
    except (AiStemSplitterError, ValueError) as exc:
        if not force:
            fail(job, _error_code(exc, "DOWNLOAD_REFUSED"), str(exc))
        logger.warning("split job %s: stems refused: %s", job.pk, exc)
        return "failed"
    finally:
        remove_dir(workdir)
    return "stored" if stored else "skipped: stored elsewhere"


@shared_task(acks_late=True)
def reconcile_splits() -> dict[str, int]:
    """Nudge jobs stuck in a non-terminal status for longer than ``RECONCILE_AFTER``.

    Lost webhooks, lost poll chains and workers that died mid-task all end up
    here: pending jobs are (re)submitted, remote ones refreshed, downloads
    retried, and in-process runs started again. Each action is idempotent.
    """
    cutoff = timezone.now() - timedelta(seconds=float(get_setting("RECONCILE_AFTER")))
    counts = {"submitted": 0, "refreshed": 0, "ingested": 0}
    stale = SplitJob.objects.active().filter(updated_at__lt=cutoff).order_by("updated_at")
    for job in stale.iterator():
        try:
            remote = isinstance(_backend(job), RemoteBackend)
        except AiStemSplitterError:
            logger.exception("split job %s: its backend %r cannot be loaded", job.pk, job.backend)
            continue
        job_id = str(job.pk)
        if job.status == SplitStatus.PENDING or not remote:
            enqueue(submit_split, job_id)
            counts["submitted"] += 1
        elif job.status == SplitStatus.DOWNLOADING:
            enqueue(ingest_split, job_id)
            counts["ingested"] += 1
        else:
            enqueue(refresh_split, job_id)
            counts["refreshed"] += 1
        # Touch the job so the next round leaves it alone unless it stays stuck.
        SplitJob.objects.filter(pk=job.pk, updated_at=job.updated_at).update(
            updated_at=timezone.now()
        )
    if any(counts.values()):
        logger.info("reconcile_splits: %s", counts)
    return counts
