"""Mirror a backend's view of a split onto its :class:`SplitJob`.

Webhooks, polls, reconciliation and the submitting task all funnel through
:func:`apply_remote_split`, so the forward-only rule (``SplitJob.advance``) and
the follow-ups (download the stems once, announce a failure once) are decided in
one place, whatever order the updates arrive in and however often.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from django_aistemsplitter import contract, signals
from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.models import STATUS_RANK, TERMINAL, SplitJob, SplitStatus

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

    A terminal job is done. A success matters until the stems are stored, since
    it (re)queues their download even while one runs. Any other status matters
    unless it maps behind the job's status; an unknown one is left to a fresh GET.
    """
    if job.status in TERMINAL:
        return False
    if remote_status == contract.SUCCEEDED:
        return True
    target = _REMOTE_TO_JOB.get(remote_status)
    return target is None or STATUS_RANK[target] >= STATUS_RANK[job.status]


def price_per_minute() -> Decimal:
    return Decimal(str(get_setting("PRICE_PER_MINUTE")))


def estimate_cost(duration_seconds: float | None) -> Decimal | None:
    """``PRICE_PER_MINUTE`` x audio minutes, to 4 decimals; None without a duration."""
    if duration_seconds is None:
        return None
    minutes = Decimal(str(duration_seconds)) / Decimal(60)
    return (minutes * price_per_minute()).quantize(Decimal("0.0001"))


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


def apply_remote_split(job: SplitJob, split: Split) -> bool:
    """Record ``split`` (the backend's state of ``job``) on the job; forward only.

    * queued/processing: status, progress, usage;
    * succeeded: usage and progress 1.0, then ``ingest_split`` is enqueued on
      commit (ingest is idempotent, so duplicate webhooks are harmless);
    * failed: the job fails with the service's error and ``split_failed`` is sent.

    A stale or backwards update changes nothing. Returns True when the job changed
    or an ingest was enqueued.
    """
    if job.is_terminal:
        return False
    status = _REMOTE_TO_JOB.get(split.status)
    if status is None:
        logger.warning("split job %s: ignoring unknown remote status %r", job.pk, split.status)
        return False
    fields = _usage_fields(job, split)
    if status == SplitStatus.FAILED:
        error = split.error
        if fields:
            SplitJob.objects.filter(pk=job.pk).update(**fields)
            for key, value in fields.items():
                setattr(job, key, value)
        return fail(
            job,
            (error.code if error and error.code else "SPLIT_FAILED"),
            (error.message if error else "the service reported the split as failed"),
        )
    if split.status == contract.SUCCEEDED:
        fields["progress"] = 1.0
    changed = False
    if job.status == SplitStatus.DOWNLOADING:
        # Already past "processing": record usage without moving the status back.
        if fields:
            changed = bool(
                SplitJob.objects.filter(pk=job.pk, status=SplitStatus.DOWNLOADING).update(**fields)
            )
    else:
        changed = job.advance(status, **fields)
    if split.status == contract.SUCCEEDED:
        from django_aistemsplitter.tasks import enqueue_on_commit, ingest_split

        enqueue_on_commit(ingest_split, str(job.pk))
        return True
    return changed


def mark_submitted(job: SplitJob, split: Split) -> bool:
    """pending -> submitted with the remote id; sends ``split_submitted`` exactly once.

    Only the writer that moves the job out of ``pending`` sends the signal (a
    conditional UPDATE decides), so a redelivered submit task stays silent. A
    job a fast webhook already moved further just gets its remote id filled in.
    """
    fields = _usage_fields(job, split)
    fields.update(remote_id=split.id, attempts=job.attempts + 1)
    now = timezone.now()
    moved = SplitJob.objects.filter(pk=job.pk, status=SplitStatus.PENDING).update(
        status=SplitStatus.SUBMITTED, submitted_at=now, updated_at=now, **fields
    )
    if moved:
        job.refresh_from_db()
        transaction.on_commit(lambda: signals.split_submitted.send(sender=SplitJob, job=job))
        return True
    SplitJob.objects.filter(pk=job.pk, remote_id="").update(remote_id=split.id)
    job.refresh_from_db()
    return False
