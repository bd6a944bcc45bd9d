"""Celery tasks: the adapter between the work queue and :mod:`django_aistemsplitter.steps`.

Every task takes a job's primary key (a string UUID, never a model instance:
the row may have changed by the time the task runs), re-reads the job and runs
one step. What belongs to delivery lives here, once, in :class:`JobTask`:

* acknowledgement after the work (``acks_late``; a task whose worker died is
  delivered again, and every step is idempotent);
* retries of :data:`~django_aistemsplitter.steps.TRANSIENT_ERRORS` through
  Celery's ``autoretry_for``, with exponential backoff and jitter that honours a
  server's ``Retry-After`` (capped), up to ``TASK_MAX_RETRIES``;
* when a task gives up, or meets an error nobody expected, its failure handler
  fails the job with a code and a message, so no job is left half-way;
* a submit or ingest that finds another run of its job alive is sent again later
  (:meth:`JobTask.defer`) instead of running beside it;
* database connections are treated as Django treats them around a request
  (:func:`_close_old_connections`): kept while healthy and younger than
  ``CONN_MAX_AGE``, so a worker that keeps them (``CELERY_DB_REUSE_MAX``) does not
  carry a broken one from task to task.

The app connects :func:`send_step` to :mod:`django_aistemsplitter.dispatch` in
``AppConfig.ready()``; nothing below this module imports it.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import shared_task
from celery.app.task import Task
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections

from django_aistemsplitter import steps, tickets, waveform
from django_aistemsplitter.backends import InProcessBackend, get_backend_class
from django_aistemsplitter.client import cap_retry_after
from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.dispatch import Step
from django_aistemsplitter.exceptions import AiStemSplitterError, EngineError
from django_aistemsplitter.jobs import fail
from django_aistemsplitter.models import SplitJob

logger = logging.getLogger(__name__)

__all__ = [
    "JobTask",
    "backoff",
    "draw_waveform",
    "enqueue",
    "heavy_queue",
    "ingest_split",
    "poll_split",
    "reconcile_splits",
    "refresh_split",
    "send_draw_waveform",
    "send_step",
    "submit_split",
]


# --- database connections ---------------------------------------------------------


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(sender: Task | None = None, **kwargs: Any) -> None:
    """Before and after each of this app's tasks, what Django does around a request.

    Celery's Django fixup closes every connection before and after every task
    unless ``CELERY_DB_REUSE_MAX`` is set; a job runs about six tasks, so each job
    then opens six PostgreSQL connections (``bench/run.py``: 80 ms of the
    database's CPU per job, a third of the machine's work). With it set, the
    fixup keeps connections, and nothing else would drop one that broke (a
    database restart, a failover) or grew older than ``CONN_MAX_AGE``:
    ``close_old_connections`` does, and re-arms ``CONN_HEALTH_CHECKS`` for the
    next task. Eager runs are left alone: they run inside the caller's request
    or transaction.
    """
    if sender is None or not sender.name.startswith(f"{__name__}."):
        return
    if sender.request.is_eager:
        return
    close_old_connections()


# --- sending ----------------------------------------------------------------------


def enqueue(
    task: Task,
    *args: Any,
    countdown: float | None = None,
    queue: str | None = None,
    **kwargs: Any,
) -> None:
    """Send ``task`` to ``queue``, else the configured ``TASK_QUEUE`` (else the default queue)."""
    options: dict[str, Any] = {}
    queue = queue or get_setting("TASK_QUEUE")
    if queue:
        options["queue"] = queue
    if countdown:
        options["countdown"] = countdown
    task.apply_async(args=args, kwargs=kwargs or None, **options)


#: Which task performs each step (names, looked up when sent, so tests can swap them).
_STEP_TASKS = {
    Step.SUBMIT: "submit_split",
    Step.POLL: "poll_split",
    Step.REFRESH: "refresh_split",
    Step.INGEST: "ingest_split",
}


def heavy_queue(step: Step, job_id: str) -> str | None:
    """``HEAVY_TASK_QUEUE`` when ``step`` separates audio in the worker, else None.

    That is the submit step of a job whose backend runs in-process: minutes of CPU
    that must not sit in front of the light tasks (remote submits, polls, refreshes,
    ingests, reconcile), which stay on ``TASK_QUEUE``. Costs one indexed read, and
    only when the setting is on.
    """
    heavy = get_setting("HEAVY_TASK_QUEUE")
    if not heavy or step != Step.SUBMIT:
        return None
    backend = SplitJob.objects.filter(pk=job_id).values_list("backend", flat=True).first()
    try:
        backend_class = get_backend_class(backend or get_setting("BACKEND"))
    except AiStemSplitterError:
        return None  # the submit task fails the job with the reason; any queue will do
    return str(heavy) if issubclass(backend_class, InProcessBackend) else None


def send_step(step: Step, job_id: str, kwargs: dict[str, Any], countdown: float | None) -> None:
    """The dispatch sender: put ``step`` for ``job_id`` on its queue (:func:`heavy_queue`)."""
    task = globals()[_STEP_TASKS[step]]
    enqueue(task, job_id, countdown=countdown, queue=heavy_queue(step, job_id), **kwargs)


# --- the task base ----------------------------------------------------------------


def backoff(retries: int, exc: BaseException | None = None) -> float:
    """Exponential backoff with jitter, at least a server's Retry-After, all capped.

    ``RETRY_BACKOFF * 2**retries`` seconds, jittered to 50-100 %, never more than
    ``RETRY_BACKOFF_MAX``; a ``Retry-After`` hint raises the delay up to that cap
    (a hostile or broken hint -- a day, 1e20, infinity -- cannot park a job).
    """
    cap = float(get_setting("RETRY_BACKOFF_MAX"))
    base = min(cap, float(get_setting("RETRY_BACKOFF")) * 2.0 ** min(retries, 64))
    delay = base * (0.5 + random.random() / 2)
    hint = getattr(exc, "retry_after", None)
    if isinstance(hint, (int, float)) and not isinstance(hint, bool):
        delay = max(delay, cap_retry_after(float(hint), cap) or 0.0)
    return delay


class JobTask(Task):
    """Base of the job tasks: late acks, automatic retries, and no job left behind."""

    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = steps.TRANSIENT_ERRORS
    #: Stored on the job when this task gives up without a more specific code.
    error_code = "TASK_FAILED"

    def retry(self, *args: Any, exc: BaseException | None = None, **options: Any) -> Any:
        """Retry with :func:`backoff` and ``TASK_MAX_RETRIES`` (read now, not at import)."""
        retries = self.request.retries or 0
        options["countdown"] = backoff(retries, exc)
        options["max_retries"] = int(get_setting("TASK_MAX_RETRIES"))
        if exc is not None:
            job_id = self.request.args[0] if self.request.args else "?"
            logger.info(
                "split job %s: transient %s (%s), retry %d",
                job_id,
                type(exc).__name__,
                exc,
                retries + 1,
            )
        return super().retry(*args, exc=exc, **options)

    def defer(self, busy: steps.RunBusyError, step: Step, **kwargs: Any) -> str:
        """Another run of the job is alive: send ``step`` again later, as a new message.

        Not a Celery retry, which would spend the retries meant for transient
        errors. Run eagerly there is no queue to come back through: the live run
        finishes the job, so this one just stops.
        """
        if self.request.is_eager or self.request.called_directly:
            return f"skipped: {busy}"
        send_step(step, str(self.request.args[0]), kwargs, busy.retry_in)
        return f"deferred {busy.retry_in:g} s: {busy}"

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        """The task gave up or met an unexpected error: fail its job, once."""
        job = _job(args[0]) if args else None
        if job is None or job.is_terminal:
            return
        retries = self.request.retries or 0
        if isinstance(exc, steps.TRANSIENT_ERRORS):
            message = f"{exc} (gave up after {retries} retries)"
        else:
            logger.error("split job %s: %s failed unexpectedly", job.pk, self.name, exc_info=exc)
            message = f"{type(exc).__name__}: {exc}"
        default = "ENGINE_FAILED" if isinstance(exc, EngineError) else self.error_code
        fail(job, steps.error_code(exc, default), message)


def _job(job_id: str) -> SplitJob | None:
    try:
        return SplitJob.objects.get(pk=job_id)
    except (SplitJob.DoesNotExist, ValueError):
        logger.warning("split job %s does not exist (deleted?); nothing to do", job_id)
        return None


# --- tasks --------------------------------------------------------------------------


@shared_task(bind=True, base=JobTask, error_code="SUBMIT_FAILED")
def submit_split(self: JobTask, job_id: str) -> str:
    """pending -> submitted (remote) or all the way to succeeded (in-process)."""
    job = _job(job_id)
    if job is None:
        return "missing"
    try:
        return steps.submit(job)
    except steps.RunBusyError as busy:
        return self.defer(busy, Step.SUBMIT)


@shared_task(bind=True, base=JobTask, error_code="POLL_FAILED")
def poll_split(self: Task, job_id: str, polls_done: int = 0) -> str:
    """Without webhooks: GET the split, apply it, and poll again later until terminal."""
    job = _job(job_id)
    return steps.poll(job, polls_done) if job is not None else "missing"


@shared_task(bind=True, base=JobTask, error_code="REFRESH_FAILED")
def refresh_split(self: Task, job_id: str) -> str:
    """GET the split once and apply it (after a thin webhook, or from reconcile)."""
    job = _job(job_id)
    return steps.refresh(job) if job is not None else "missing"


@shared_task(bind=True, base=JobTask, error_code="DOWNLOAD_FAILED")
def ingest_split(self: JobTask, job_id: str, force: bool = False) -> str:
    """Download every stem of a succeeded split into storage, all or nothing."""
    job = _job(job_id)
    if job is None:
        return "missing"
    try:
        return steps.ingest(job, force=force)
    except steps.RunBusyError as busy:
        return self.defer(busy, Step.INGEST, force=force)


@shared_task(acks_late=True, ignore_result=True)
def draw_waveform(stem_id: int) -> bool:
    """Draw and cache a stored stem's waveform, so no page view has to read the stem.

    Queued once the stem is committed (:func:`send_draw_waveform`), on
    ``TASK_QUEUE`` with the other light tasks. Idempotent, and never failing: a
    picture that cannot be drawn is logged and drawn again on first view.
    """
    return waveform.draw_stem(stem_id)


def send_draw_waveform(stem_id: int) -> None:
    """The waveform sender (:func:`waveform.connect`): queue :func:`draw_waveform`."""
    enqueue(draw_waveform, stem_id)


@shared_task(acks_late=True)
def reconcile_splits() -> dict[str, int]:
    """Nudge jobs stuck in a non-terminal status (see :func:`steps.reconcile`), and
    delete what expired upload tickets left (:func:`tickets.purge_expired`)."""
    return {**steps.reconcile(), **tickets.purge_expired()}
