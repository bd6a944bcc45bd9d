"""Mirror a backend's view of a split onto its :class:`SplitJob`.

Webhooks, polls, reconciliation and the submitting task all funnel through
:func:`apply_remote_split`, so the forward-only rule (``SplitJob.advance``) and
the follow-ups (queue the stems' download once, see :func:`claim_ingest`;
announce a failure once) are decided in one place, whatever order the updates
arrive in and however often. It returns what should happen next (an
:class:`~django_aistemsplitter.dispatch.Step`); :func:`mirror` applies and asks
for that step, so this module never imports the tasks that do the work.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db import connection, connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from django_aistemsplitter import contract, signals
from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.dispatch import Step, send_on_commit
from django_aistemsplitter.models import (
    ACTIVE,
    STATUS_RANK,
    TERMINAL,
    SplitJob,
    SplitStatus,
    statuses_before,
)
from django_aistemsplitter.pricing import estimate_cost

if TYPE_CHECKING:
    from django_aistemsplitter.client.types import Split

logger = logging.getLogger(__name__)

#: Remote status -> the job status it moves the job to (success first means
#: "processing, done": the job only succeeds once its stems are stored).
_REMOTE_TO_JOB = {
    contract.QUEUED: SplitStatus.SUBMITTED,
    contract.PROCESSING: SplitStatus.PROCESSING,
    contract.SUCCEEDED: SplitStatus.PROCESSING,
    contract.FAILED: SplitStatus.FAILED,
}


def could_advance(job: SplitJob, remote_status: str) -> bool:
    """Whether a remote status could still change ``job`` (webhooks drop the rest).

    A terminal job is done. A success matters until the stems are stored: it
    queues their download if nobody has yet (:func:`claim_ingest`), else it still
    records the usage it carries. Any other status matters unless it maps behind
    the job's status; an unknown one is left to a fresh GET.
    """
    if job.status in TERMINAL:
        return False
    if remote_status == contract.SUCCEEDED:
        return True
    target = _REMOTE_TO_JOB.get(remote_status)
    return target is None or STATUS_RANK[target] >= STATUS_RANK[job.status]


def _usage_fields(job: SplitJob, split: Split) -> dict[str, Any]:
    """Duration, credits, cost and progress to record, never lowering progress."""
    fields: dict[str, Any] = {}
    if split.duration_seconds is not None:
        fields["duration_seconds"] = split.duration_seconds
        fields["estimated_cost"] = estimate_cost(split.duration_seconds)
    if split.credits_used is not None:
        fields["credits_used"] = split.credits_used
    if split.progress is not None:
        progress = min(1.0, max(0.0, float(split.progress)))
        if progress > job.progress:
            fields["progress"] = progress
    if split.id and not job.remote_id:
        fields["remote_id"] = split.id
    return fields


def fail(job: SplitJob, code: str, message: str) -> bool:
    """Mark ``job`` failed (once) and send ``split_failed``; False if already terminal."""
    message = message[:2000]
    if not job.advance(SplitStatus.FAILED, error_code=code[:64], error_message=message):
        return False
    logger.warning("split job %s failed: [%s] %s", job.pk, code, message)
    signals.split_failed.send(
        sender=SplitJob, job=job, error_code=job.error_code, error_message=job.error_message
    )
    return True


@dataclass(frozen=True)
class Applied:
    """What :func:`apply_remote_split` did: whether the job changed, and what comes next."""

    changed: bool
    next_step: Step | None = None

    def __bool__(self) -> bool:
        return self.changed or self.next_step is not None


def apply_remote_split(job: SplitJob, split: Split) -> Applied:
    """Record ``split`` (the backend's state of ``job``) on the job; forward only.

    * queued/processing: status, progress, usage;
    * succeeded: usage and progress 1.0, and the job moves to ``downloading``
      (:func:`claim_ingest`); only the caller whose update moved it gets
      ``INGEST`` as the next step, so a poll and a webhook (or two deliveries)
      reporting the same success queue one ingest, not two;
    * failed: the job fails with the service's error and ``split_failed`` is sent.

    A stale or backwards update changes nothing (a falsy result).
    """
    if job.is_terminal:
        return Applied(False)
    status = _REMOTE_TO_JOB.get(split.status)
    if status is None:
        logger.warning("split job %s: ignoring unknown remote status %r", job.pk, split.status)
        return Applied(False)
    fields = _usage_fields(job, split)
    if status == SplitStatus.FAILED:
        error = split.error
        if fields:
            SplitJob.objects.filter(pk=job.pk).update(**fields)
            for key, value in fields.items():
                setattr(job, key, value)
        return Applied(
            fail(
                job,
                (error.code if error and error.code else "SPLIT_FAILED"),
                (error.message if error else "the service reported the split as failed"),
            )
        )
    if split.status == contract.SUCCEEDED:
        fields["progress"] = 1.0
        if job.status != SplitStatus.DOWNLOADING:
            if claim_ingest(job, **fields):
                return Applied(True, Step.INGEST)
            # Another caller claimed it first (or the job ended): its ingest is queued.
            job.refresh_from_db()
            if job.is_terminal:
                return Applied(False)
    if job.status == SplitStatus.DOWNLOADING:
        # Already past "processing" (an ingest is queued or running): record usage
        # without moving the status back, and without asking for a second ingest.
        changed = bool(fields) and bool(
            SplitJob.objects.filter(pk=job.pk, status=SplitStatus.DOWNLOADING).update(**fields)
        )
        return Applied(changed)
    return Applied(job.advance(status, **fields))


def claim_ingest(job: SplitJob, **fields: Any) -> bool:
    """Move ``job`` to ``downloading`` (with ``fields``); True for the caller that moved it.

    This is the ingest's claim, kept in the job's own state: one conditional
    UPDATE, so of two writers racing here (PostgreSQL makes the second re-read
    the row once the first commits) exactly one wins and queues the ingest; the
    other, and anyone later, sees ``downloading`` and queues nothing. The claim
    cannot strand a job: if its message is lost or its worker dies, the job stays
    ``downloading`` without a heartbeat, and reconciliation queues the ingest
    again once it has been quiet for ``RECONCILE_AFTER``.
    """
    now = timezone.now()
    values = {"status": SplitStatus.DOWNLOADING, "updated_at": now, **fields}
    claimed = SplitJob.objects.filter(
        pk=job.pk, status__in=statuses_before(SplitStatus.DOWNLOADING)
    ).update(**values)
    if claimed:
        for key, value in values.items():
            setattr(job, key, value)
    return bool(claimed)


def mirror(job: SplitJob, split: Split) -> Applied:
    """:func:`apply_remote_split`, then ask for its next step once the transaction commits."""
    applied = apply_remote_split(job, split)
    if applied.next_step is not None:
        send_on_commit(applied.next_step, job.pk)
    return applied


def mark_submitted(job: SplitJob, split: Split | None = None) -> bool:
    """pending -> submitted (with the remote id); sends ``split_submitted`` exactly once.

    ``split`` is the remote split just created; in-process backends, which create
    nothing remote, pass none. Only the writer that moves the job out of
    ``pending`` sends the signal (a conditional UPDATE decides), so a redelivered
    submit task stays silent. A job a fast webhook already moved further just gets
    its remote id filled in.
    """
    fields = _usage_fields(job, split) if split is not None else {}
    remote_id = split.id if split is not None else ""
    fields.update(remote_id=remote_id, attempts=job.attempts + 1)
    now = timezone.now()
    moved = SplitJob.objects.filter(pk=job.pk, status=SplitStatus.PENDING).update(
        status=SplitStatus.SUBMITTED, submitted_at=now, updated_at=now, **fields
    )
    if moved:
        job.refresh_from_db()
        transaction.on_commit(lambda: signals.split_submitted.send(sender=SplitJob, job=job))
        return True
    if remote_id:
        SplitJob.objects.filter(pk=job.pk, remote_id="").update(remote_id=remote_id)
    job.refresh_from_db()
    return False


# --- runs: how many died, and whether one is alive -------------------------------------
#
# A run is one execution of a step that does the heavy work of a job (submitting it,
# separating it in process, downloading its stems). ``unfinished_runs`` counts runs
# that started and have not ended: a run that ends in any way a Python process can
# see (returned, raised, will be retried) puts it back to 0, so only runs whose
# worker died (a segfault, the OOM killer, a power cut) are left counted. While a run
# works it beats (``heartbeat_at``, every :func:`heartbeat_interval`), so a run whose
# heartbeat is recent is alive: nothing starts a second run beside it.

#: Error code of a job failed because the runs before kept dying with their worker.
WORKER_LOST = "WORKER_LOST"


class RunStart(enum.Enum):
    """What :func:`begin_run` decided."""

    STARTED = "started"
    """Counted: go ahead, and call :func:`end_run` however the run ends."""
    BUSY = "busy"
    """Another run of the job is alive: do not start a second one now."""
    LOST = "lost"
    """The runs before all died with their worker: the job failed (``WORKER_LOST``)."""


def heartbeat_interval() -> float:
    """Seconds between two heartbeats of a running job: well inside ``RECONCILE_AFTER``.

    Reconciliation takes a job whose heartbeat is older than ``RECONCILE_AFTER``
    for one whose worker is gone, so a live run beats several times per period.
    """
    return max(0.1, min(30.0, float(get_setting("RECONCILE_AFTER")) / 4))


def liveness_window() -> float:
    """Seconds without a heartbeat after which an unfinished run counts as dead."""
    return 3 * heartbeat_interval()


def heartbeat(job: SplitJob) -> bool:
    """Record that a worker is working on ``job`` right now; False once it is terminal.

    A False answer tells a long run that nobody waits for its result any more
    (the job was cancelled, or failed by its deadline), so it may stop.
    """
    now = timezone.now()
    return bool(
        SplitJob.objects.filter(pk=job.pk, status__in=ACTIVE).update(
            heartbeat_at=now, updated_at=now
        )
    )


@contextmanager
def beating(job: SplitJob) -> Iterator[None]:
    """Beat for ``job`` from a thread of its own while the block runs.

    A run's own code may spend minutes in one call (an upload, a stem download,
    a quiet engine); the thread keeps the heartbeat fresh meanwhile. Inside a
    transaction there is no thread: its own connection could neither see this
    transaction's rows nor update them without waiting for it.
    """
    if connection.in_atomic_block:
        yield
        return
    stop = threading.Event()
    interval = heartbeat_interval()

    def beat() -> None:
        try:
            while not stop.wait(interval):
                heartbeat(job)
        except Exception:
            logger.exception("split job %s: heartbeat failed", job.pk)
        finally:
            connections.close_all()  # this thread's connections only

    thread = threading.Thread(target=beat, name=f"aiss-heartbeat-{job.pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def begin_run(job: SplitJob) -> RunStart:
    """Count a run of ``job`` as started, unless another is alive or the last ones died.

    After ``MAX_UNFINISHED_RUNS`` runs that never ended, the message that starts
    them is taken to kill its worker (a poison message): the job fails with
    ``WORKER_LOST`` instead of running again, and the count is reset. An
    unfinished run whose heartbeat is younger than :func:`liveness_window` is
    alive, not dead: the answer is then ``BUSY`` and nothing is counted.
    """
    limit = max(1, int(get_setting("MAX_UNFINISHED_RUNS")))
    now = timezone.now()
    alive = Q(unfinished_runs__gt=0, heartbeat_at__gte=now - timedelta(seconds=liveness_window()))
    # One conditional UPDATE: of two deliveries racing here, the second sees the
    # first's fresh heartbeat (the row lock makes it re-read the row) and is BUSY.
    started = (
        SplitJob.objects.filter(pk=job.pk, unfinished_runs__lt=limit)
        .exclude(alive)
        .update(unfinished_runs=F("unfinished_runs") + 1, heartbeat_at=now, updated_at=now)
    )
    if started:
        job.refresh_from_db(fields=["unfinished_runs", "heartbeat_at", "updated_at"])
        return RunStart.STARTED
    if SplitJob.objects.filter(alive, pk=job.pk).exists():
        return RunStart.BUSY
    job.refresh_from_db()
    died = job.unfinished_runs
    if died < limit:
        # Not a poison message: the run that was alive at the UPDATE has ended
        # since (its count is back under the limit). Come back later, as if busy.
        return RunStart.BUSY
    SplitJob.objects.filter(pk=job.pk).update(unfinished_runs=0, heartbeat_at=None)
    fail(
        job,
        WORKER_LOST,
        f"{died} runs of this job in a row ended with their worker process (killed, out of "
        "memory, or crashed in native code); not running it again. Retry the job to try anew.",
    )
    job.refresh_from_db()
    return RunStart.LOST


def end_run(job: SplitJob) -> None:
    """The run that :func:`begin_run` counted ended (however): nothing is left unfinished."""
    SplitJob.objects.filter(pk=job.pk).update(unfinished_runs=0, heartbeat_at=None)
