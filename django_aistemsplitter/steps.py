"""What each step does to a job, without Celery: submit, run, poll, refresh, ingest, reconcile.

The Celery tasks (:mod:`django_aistemsplitter.tasks`) are a thin adapter over
these functions: they load the job, call the step, and own delivery concerns
(retry with backoff, acknowledgement, failing the job when a task gives up).
Each step is idempotent, because Celery delivers at least once and webhooks,
polls and reconciliation may ask for the same work twice:

* :func:`submit` sends the job's idempotency key, so a replay returns the same
  remote split; the unique (backend, remote id) constraint backs it;
* :func:`ingest` uploads the stems, then commits their rows under a short row
  lock that re-checks the job's status first; the move to ``downloading``
  (:func:`~django_aistemsplitter.jobs.claim_ingest`) makes a poll and a webhook
  reporting the same success queue it once;
* status changes go through ``SplitJob.advance`` (forward only).

A step returns a short outcome for the task result. It handles the failures
whose meaning it knows (a refused download, a split the service no longer
knows, an engine that cannot run the job) by failing the job itself; a
:data:`TRANSIENT_ERRORS` error propagates so the task retries it, and anything
else propagates so the task fails the job.

The heavy part of submit and ingest is a counted *run*
(:func:`~django_aistemsplitter.jobs.begin_run`): a message whose runs keep dying
with their worker fails its job (``WORKER_LOST``) instead of looping, and a run
beats while it works, so :func:`reconcile` never starts a second one beside it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.db import DatabaseError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from django_aistemsplitter import contract, deliveries
from django_aistemsplitter.backends import InProcessBackend, RemoteBackend, get_backend
from django_aistemsplitter.client.types import Split
from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.dispatch import Step, send, send_on_commit
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
from django_aistemsplitter.jobs import (
    RunStart,
    beating,
    begin_run,
    end_run,
    fail,
    heartbeat,
    heartbeat_interval,
    liveness_window,
    mark_submitted,
    mirror,
)
from django_aistemsplitter.models import SplitJob, SplitStatus
from django_aistemsplitter.pricing import ENGINE_SECONDS_KEY

logger = logging.getLogger(__name__)

__all__ = [
    "TRANSIENT_ERRORS",
    "RunAbandonedError",
    "RunBusyError",
    "error_code",
    "ingest",
    "poll",
    "poll_delay",
    "reconcile",
    "reconcile_batch_size",
    "refresh",
    "submit",
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

#: Failures a step understands: they fail the job with the error's message.
_REFUSALS: tuple[type[BaseException], ...] = (APIError, AiStemSplitterError, ValueError)


def error_code(exc: BaseException, default: str) -> str:
    """The code to store for ``exc``: its own (API errors carry one), else ``default``."""
    code = getattr(exc, "code", None)
    return str(code)[:64] if code else default


def _refuse(job: SplitJob, exc: BaseException, default_code: str) -> str:
    fail(job, error_code(exc, default_code), str(exc))
    return "failed"


class RunAbandonedError(AiStemSplitterError):
    """The job became terminal (cancelled, past its deadline) while a run worked on it."""


class RunBusyError(AiStemSplitterError):
    """Another run of the job is alive; try this step again in ``retry_in`` seconds.

    The task adapter sends the step again later (a new message): if the live run
    finishes the job, that later step finds nothing to do; if it dies, its
    heartbeat goes stale and the later step runs.
    """

    def __init__(self, message: str, *, retry_in: float) -> None:
        super().__init__(message)
        self.retry_in = retry_in


@contextmanager
def _counted_run(job: SplitJob) -> Iterator[bool]:
    """Count the heavy part of a step as a run (see :func:`jobs.begin_run`), beating meanwhile.

    Yields False, having failed the job with ``WORKER_LOST``, when the runs
    before this one all died with their worker; raises :class:`RunBusyError`
    when another run of the job is alive. The run is over however the block
    ends, except by the death of the process.
    """
    start = begin_run(job)
    if start is RunStart.BUSY:
        raise RunBusyError(f"split job {job.pk}: another run is alive", retry_in=liveness_window())
    if start is RunStart.LOST:
        yield False
        return
    try:
        with beating(job):
            yield True
    finally:
        end_run(job)


# --- submit ---------------------------------------------------------------------


def submit(job: SplitJob) -> str:
    """pending -> submitted (remote) or all the way to succeeded (in-process)."""
    backend = get_backend(job.backend or None)
    if isinstance(backend, InProcessBackend):
        return _run_in_process(job, backend)
    if not isinstance(backend, RemoteBackend):
        return _refuse(job, TypeError(f"{backend!r} is neither remote nor in-process"), "BACKEND")
    if job.status != SplitStatus.PENDING:
        return f"skipped: already {job.status}"
    with _counted_run(job) as allowed:
        if not allowed:
            return "failed: worker lost"
        try:
            split = backend.submit(job)
        except TRANSIENT_ERRORS:
            raise
        except _REFUSALS as exc:
            return _refuse(job, exc, "SUBMIT_FAILED")
    mark_submitted(job, split)
    # Events that beat the commit of the remote id (thin ones find no job otherwise).
    deliveries.replay_unmatched(job)
    mirror(job, split)
    if not split.is_terminal and not backend.uses_webhooks():
        send_on_commit(Step.POLL, job.pk, countdown=poll_delay(0), polls_done=0)
    return f"submitted {job.remote_id}"


def _progress_recorder(job: SplitJob) -> Callable[[float], None]:
    """Write engine progress to the job (every 5 percentage points) and beat meanwhile.

    Between two recorded steps it beats at most once per heartbeat interval.
    Raises :class:`RunAbandonedError` once the job is terminal, which stops the run.
    """
    last = [job.progress]
    interval = heartbeat_interval()
    beaten = [time.monotonic()]

    def record(fraction: float) -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        now = time.monotonic()
        if fraction - last[0] >= 0.05 or (fraction >= 1.0 > last[0]):
            last[0] = fraction
            at = timezone.now()
            alive = job.advance(SplitStatus.PROCESSING, progress=fraction, heartbeat_at=at)
        elif now - beaten[0] >= interval:
            alive = False
        else:
            return
        beaten[0] = now
        if not (alive or heartbeat(job)):
            raise RunAbandonedError(f"split job {job.pk} is no longer active; stopping its run")

    return record


def _run_in_process(job: SplitJob, backend: InProcessBackend) -> str:
    """Separate on this worker and store the files directly.

    Safe to run twice: a finished job is skipped, and a second run racing the
    first loses at the locked commit and stores nothing.
    """
    if job.is_terminal:
        return f"skipped: already {job.status}"
    with _counted_run(job) as allowed:
        if not allowed:
            return "failed: worker lost"
        return _separate_and_store(job, backend)


def _separate_and_store(job: SplitJob, backend: InProcessBackend) -> str:
    mark_submitted(job)
    job.advance(SplitStatus.PROCESSING)
    try:
        result = backend.run(job, _progress_recorder(job))
    except RunAbandonedError as exc:
        logger.info("%s", exc)
        job.refresh_from_db(fields=["status"])
        return f"stopped: {job.status}"
    except TRANSIENT_ERRORS:
        raise
    except _REFUSALS as exc:
        return _refuse(job, exc, "ENGINE_FAILED")
    try:
        job.advance(
            SplitStatus.DOWNLOADING,
            progress=1.0,
            duration_seconds=result.duration_seconds,
            estimated_cost=None,  # no service, no money: the engine time is the cost
            metadata={**job.metadata, ENGINE_SECONDS_KEY: result.metadata.get("seconds")},
        )
        stored = commit_stems(job, stage_local_files(result.files))
    except TRANSIENT_ERRORS:
        raise
    except _REFUSALS as exc:
        return _refuse(job, exc, "INGEST_FAILED")
    finally:
        result.cleanup()
    return "succeeded" if stored else "skipped: finished elsewhere"


# --- poll and refresh -----------------------------------------------------------


def poll_delay(polls_done: int) -> float:
    """``POLL_INTERVAL`` growing by half each poll, capped at ``POLL_MAX_INTERVAL``."""
    interval = float(get_setting("POLL_INTERVAL"))
    return float(min(interval * (1.5**polls_done), float(get_setting("POLL_MAX_INTERVAL"))))


def _fetch_and_mirror(job: SplitJob, backend: RemoteBackend) -> Split | str:
    """GET the remote split and mirror it onto ``job``.

    Returns the split, or ``"failed"`` when the service no longer knows it (the
    job fails). Transient errors propagate for the task to retry.
    """
    try:
        split = backend.fetch(job)
    except NotFoundError as exc:
        fail(job, "REMOTE_NOT_FOUND", str(exc))
        return "failed"
    mirror(job, split)
    return split


def _remote_backend(job: SplitJob) -> RemoteBackend | None:
    backend = get_backend(job.backend or None)
    return backend if isinstance(backend, RemoteBackend) else None


def poll(job: SplitJob, polls_done: int = 0) -> str:
    """Without webhooks: GET the split, apply it, and ask for the next poll until terminal."""
    if job.is_terminal or job.status == SplitStatus.DOWNLOADING:
        return f"stopped: {job.status}"
    backend = _remote_backend(job)
    if backend is None or not job.remote_id:
        return "stopped: nothing to poll"
    started = job.submitted_at or job.created_at
    if timezone.now() - started > timedelta(seconds=float(get_setting("POLL_TIMEOUT"))):
        fail(job, "POLL_TIMEOUT", "the split did not finish within POLL_TIMEOUT")
        return "timed out"
    split = _fetch_and_mirror(job, backend)
    if isinstance(split, str):
        return split
    if not split.is_terminal:
        send_on_commit(
            Step.POLL, job.pk, countdown=poll_delay(polls_done + 1), polls_done=polls_done + 1
        )
    return split.status


def refresh(job: SplitJob) -> str:
    """GET the split once and apply it (after a thin webhook, or from reconcile)."""
    if job.is_terminal:
        return f"skipped: already {job.status}"
    backend = _remote_backend(job)
    if backend is None:
        return "skipped: not remote"
    if not job.remote_id:
        if job.status == SplitStatus.PENDING:
            send_on_commit(Step.SUBMIT, job.pk)
            return "resubmitted"
        return "skipped: no remote id"
    split = _fetch_and_mirror(job, backend)
    return split if isinstance(split, str) else split.status


# --- ingest ---------------------------------------------------------------------


def ingest(job: SplitJob, *, force: bool = False) -> str:
    """Download every stem of a succeeded split into storage, all or nothing.

    The split is fetched again first: stem URLs are presigned and expire, and a
    fresh GET also tells whether the webhook that triggered us was stale.
    ``force`` re-downloads the stems of a job that already succeeded.

    The job is normally ``downloading`` already: whoever saw the success first
    claimed the ingest (:func:`~django_aistemsplitter.jobs.claim_ingest`). A
    redelivery of this step, or reconcile's after a worker died, finds it
    there and runs it again; two at once do not run side by side (the second
    is :class:`RunBusyError`), and the commit stores nothing for a job that
    finished meanwhile.
    """
    if job.is_terminal and not (force and job.status == SplitStatus.SUCCEEDED):
        return f"skipped: already {job.status}"
    backend = _remote_backend(job)
    if backend is None:
        return "skipped: stems of in-process backends are stored when they run"
    try:
        split = backend.fetch(job)
    except TRANSIENT_ERRORS:
        raise
    except (APIError, ValueError) as exc:
        return _refuse(job, exc, "INGEST_FAILED")
    if split.status != contract.SUCCEEDED:
        if not force:
            mirror(job, split)
        return f"not ready: {split.status}"
    if not force and not job.advance(SplitStatus.DOWNLOADING, progress=1.0):
        job.refresh_from_db()
        if job.is_terminal:
            return f"skipped: already {job.status}"
    with _counted_run(job) as allowed:
        if not allowed:
            return "failed: worker lost"
        workdir = staging_dir()
        try:
            staged = stage_remote_stems(job, split.stems, workdir)
            stored = commit_stems(job, staged, replace=force)
        except TRANSIENT_ERRORS:
            raise
        except (AiStemSplitterError, ValueError) as exc:
            if not force:
                fail(job, error_code(exc, "DOWNLOAD_REFUSED"), str(exc))
            logger.warning("split job %s: stems refused: %s", job.pk, exc)
            return "failed"
        finally:
            remove_dir(workdir)
    return "stored" if stored else "skipped: stored elsewhere"


# --- reconcile ------------------------------------------------------------------


def _fail_overdue(now: datetime, limit: int) -> int:
    """Fail up to ``limit`` unfinished jobs past ``JOB_TIMEOUT``; returns how many.

    The deadline runs from the job's submission, or from its creation while it
    was never submitted. A retried job waiting for its new submission has no
    ``submitted_at`` and attempts behind it: the reconcile attempt cap bounds it.
    The jobs are locked with ``SKIP LOCKED``, as in :func:`reconcile`.
    """
    timeout = get_setting("JOB_TIMEOUT")
    if not timeout or limit <= 0:
        return 0
    deadline = now - timedelta(seconds=float(timeout))
    overdue = (
        SplitJob.objects.active()
        .filter(
            Q(submitted_at__lt=deadline)
            | Q(submitted_at__isnull=True, attempts=0, created_at__lt=deadline)
        )
        .order_by("created_at")
    )
    failed = 0
    with transaction.atomic():
        for job in _lock_batch(overdue, limit):
            failed += fail(
                job,
                "JOB_TIMEOUT",
                f"the job was still {job.status} after JOB_TIMEOUT ({float(timeout):g} s)",
            )
    return failed


def _lock_batch(queryset: QuerySet[SplitJob], limit: int) -> list[SplitJob]:
    """The first ``limit`` rows of ``queryset`` nobody else has locked, locked until commit.

    ``SELECT ... FOR UPDATE SKIP LOCKED``: a concurrent reconcile run skips the
    rows this one holds and takes the next ones, instead of the same ones or a
    wait. (Databases without row locks run the plain SELECT.)
    """
    return list(queryset.select_for_update(skip_locked=True)[:limit])


def _next_step(job: SplitJob) -> Step | None:
    """What a stuck job needs: (re)submit, refresh or ingest; None if its backend is gone."""
    try:
        remote = isinstance(get_backend(job.backend or None), RemoteBackend)
    except AiStemSplitterError:
        logger.exception("split job %s: its backend %r cannot be loaded", job.pk, job.backend)
        return None
    if job.status == SplitStatus.PENDING or not remote:
        return Step.SUBMIT
    if job.status == SplitStatus.DOWNLOADING:
        return Step.INGEST
    return Step.REFRESH


_COUNT_NAMES = {Step.SUBMIT: "submitted", Step.REFRESH: "refreshed", Step.INGEST: "ingested"}


def reconcile_batch_size(batch_size: int | None = None) -> int:
    """Most jobs one reconcile run looks at: ``batch_size``, else ``RECONCILE_BATCH_SIZE``."""
    size = get_setting("RECONCILE_BATCH_SIZE") if batch_size is None else batch_size
    return max(1, int(size))


def reconcile(*, older_than: float | None = None, batch_size: int | None = None) -> dict[str, int]:
    """Nudge jobs stuck in a non-terminal status for longer than ``RECONCILE_AFTER``.

    ``older_than`` (seconds) replaces that setting for this run, ``batch_size``
    ``RECONCILE_BATCH_SIZE``.
    Lost webhooks, lost poll chains and workers that died mid-task all end up
    here: pending jobs are (re)submitted, remote ones refreshed, downloads
    retried (a job claimed for an ingest whose message or worker was lost), and
    in-process runs started again. Each step is idempotent.

    Every job still ends: one past ``JOB_TIMEOUT`` fails (``JOB_TIMEOUT``), and
    one nudged ``RECONCILE_MAX_ATTEMPTS`` times already fails
    (``RECONCILE_EXHAUSTED``) instead of being queued again. A job whose worker
    beat within the period is running, not stuck, and is left alone.

    One run looks at no more than the batch size of jobs (overdue ones first),
    the longest-quiet first, so a backlog drains over the next runs with a
    bounded number of queries and messages each. The batch is locked with
    ``SELECT ... FOR UPDATE SKIP LOCKED`` in a short transaction that marks
    every job of it nudged with one UPDATE: a second run at the same time takes
    other jobs, and the next run leaves these alone unless they stay stuck. The
    steps are sent once that transaction has committed.
    """
    now = timezone.now()
    after = float(get_setting("RECONCILE_AFTER") if older_than is None else older_than)
    cutoff = now - timedelta(seconds=after)
    max_attempts = int(get_setting("RECONCILE_MAX_ATTEMPTS"))
    size = reconcile_batch_size(batch_size)
    counts = {"submitted": 0, "refreshed": 0, "ingested": 0, "timed_out": 0, "gave_up": 0}
    counts["timed_out"] = _fail_overdue(now, size)
    stale = (
        SplitJob.objects.active()
        .filter(updated_at__lt=cutoff)
        .exclude(heartbeat_at__gte=cutoff)
        .order_by("updated_at")
    )
    nudges: list[tuple[Step, Any]] = []
    unloadable: list[Any] = []
    room = size - counts["timed_out"]
    with transaction.atomic():
        batch = _lock_batch(stale, room) if room > 0 else []
        for job in batch:
            if job.reconcile_attempts >= max_attempts:
                counts["gave_up"] += fail(
                    job,
                    "RECONCILE_EXHAUSTED",
                    f"still {job.status} after {job.reconcile_attempts} reconciliation "
                    "attempts (RECONCILE_MAX_ATTEMPTS)",
                )
                continue
            step = _next_step(job)
            if step is not None:
                nudges.append((step, job.pk))
            else:
                unloadable.append(job.pk)
        if nudges:
            # Touch the batch, so the next round leaves it alone unless it stays stuck.
            SplitJob.objects.filter(pk__in=[pk for _, pk in nudges]).update(
                updated_at=now, reconcile_attempts=F("reconcile_attempts") + 1
            )
        if unloadable:
            # Not an attempt (the backend may come back), but to the back of the queue,
            # so jobs nobody can move now do not fill every batch.
            SplitJob.objects.filter(pk__in=unloadable).update(updated_at=now)
    for step, pk in nudges:
        send(step, pk)
        counts[_COUNT_NAMES[step]] += 1
    if any(counts.values()):
        logger.info("reconcile_splits: %s", counts)
    if len(batch) + counts["timed_out"] >= size:
        logger.info("reconcile_splits: batch of %d full; the next run takes the rest", size)
    return counts
