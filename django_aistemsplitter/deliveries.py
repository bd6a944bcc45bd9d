"""Webhook deliveries: recorded once, then treated as a trigger for their job.

The view (:mod:`django_aistemsplitter.backends.hosted.webhook`) verifies a
delivery and hands the event here; everything after verification is job state,
so it lives below the entry points:

* **Record** the delivery as a :class:`~django_aistemsplitter.models.WebhookEvent`
  keyed on its unique event id (thin events get an id derived from the split id
  and status). The insert itself is the deduplication: a repeated or concurrent
  delivery hits the unique index (PostgreSQL makes the second insert wait for the
  first transaction) and bumps ``deliveries`` with an ``F()`` update. When the
  first delivery already reached a final outcome, the row **keeps that first
  outcome** (the audit trail says what was done, ``deliveries`` how often it was
  asked) and this delivery is answered ``duplicate``. A delivery whose earlier
  processing ended in ``error``, found no job or was ``malformed`` is processed
  again, so the service's retry of a 500 (or its corrected event) is not swallowed.
* Send :data:`~django_aistemsplitter.signals.webhook_received` (``created`` is
  False for a redelivery; the row it carries still shows the first outcome).
* **Process**: the event is a trigger, not the truth. The job is found by its
  remote id; an event that would move it backwards is ``ignored``; a thin event
  (or anything short of what we need) asks for a ``refresh`` step after commit;
  a full event is mirrored with :func:`~django_aistemsplitter.jobs.mirror`, which
  asks for the ingest. Nothing slow runs in the request.

Processing runs in a savepoint, so a failure rolls back its own writes and stores
the outcome ``error`` (the view answers 500 and the service retries), except a
:class:`~django.db.DataError` or an :class:`ArithmeticError`: a value the database
(or the cost computation) refuses is refused again on every retry, so it is stored
as ``malformed`` with its reason, like a signed body the view could not read
(:func:`record_malformed`).

An event for a split no job knows (``unknown_job``) is kept: a split can finish
before the task that submitted it has committed the remote id, so
:func:`replay_unmatched` processes those events again once it has.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import DataError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from django_aistemsplitter import contract, jobs
from django_aistemsplitter.backends.hosted.backend import ATTEMPT_METADATA_KEY, JOB_METADATA_KEY
from django_aistemsplitter.client.types import WebhookEvent as RemoteEvent
from django_aistemsplitter.dispatch import Step, send_on_commit
from django_aistemsplitter.models import SplitJob, WebhookEvent, WebhookOutcome
from django_aistemsplitter.signals import webhook_received

__all__ = ["Delivery", "handle_event", "record_malformed", "replay_unmatched"]

logger = logging.getLogger(__name__)

# Choice values as plain strings (``str()`` of a Django choice is its value).
RECEIVED = str(WebhookOutcome.RECEIVED)
PROCESSED = str(WebhookOutcome.PROCESSED)
DUPLICATE = str(WebhookOutcome.DUPLICATE)
IGNORED = str(WebhookOutcome.IGNORED)
UNKNOWN_JOB = str(WebhookOutcome.UNKNOWN_JOB)
ERROR = str(WebhookOutcome.ERROR)
MALFORMED = str(WebhookOutcome.MALFORMED)


def column_max_length(field: str, default: int) -> int:
    """The ``max_length`` of a ``WebhookEvent`` column: what a delivery's fields must fit."""
    return getattr(WebhookEvent._meta.get_field(field), "max_length", None) or default


_MAX_STATUS = column_max_length("remote_status", 16)
_MAX_REASON = column_max_length("reason", 200)

#: Stored outcomes after which a redelivery is processed again.
REPROCESS_OUTCOMES = frozenset({RECEIVED, ERROR, UNKNOWN_JOB, MALFORMED})


@dataclass(frozen=True)
class Delivery:
    """What one delivery did: the stored row, and this delivery's own outcome.

    ``outcome`` is the row's outcome for the delivery that settled it, and
    ``duplicate`` for a redelivery of a settled event, whose row keeps the first
    outcome. ``reason`` says why this delivery was ``malformed`` (else empty).
    """

    record: WebhookEvent
    outcome: str
    reason: str = ""


def _find_job(event: RemoteEvent) -> SplitJob | None:
    """The job of ``event``'s split: by remote id, else by the ids in its metadata.

    The hosted backend puts our job id and the attempt's idempotency key into the
    split's metadata, so a webhook that beats the commit of the remote id still
    finds its job. It is only matched that way while the job has no remote id and
    still has that key (a retried job has a new one), and the remote id is then
    filled in.
    """
    job = SplitJob.objects.filter(remote_id=event.split_id).order_by("-created_at").first()
    if job is not None:
        return job
    metadata = event.data.metadata
    try:
        pk = uuid.UUID(str(metadata.get(JOB_METADATA_KEY)))
    except ValueError:
        return None
    attempt = str(metadata.get(ATTEMPT_METADATA_KEY) or "")
    claimed = SplitJob.objects.filter(pk=pk, remote_id="", idempotency_key=attempt).update(
        remote_id=event.split_id
    )
    return SplitJob.objects.get(pk=pk) if claimed else None


def _process(record: WebhookEvent, event: RemoteEvent) -> str:
    job = _find_job(event)
    if job is None:
        logger.info("Webhook %r names split %r, which no job knows.", event.id, event.split_id)
        return UNKNOWN_JOB
    if record.job_id != job.pk:
        record.job = job
        WebhookEvent.objects.filter(pk=record.pk).update(job=job)
    if not jobs.could_advance(job, event.status):
        logger.info(
            "Webhook %r (%r) ignored: job %s is already %s.",
            event.id,
            event.status,
            job.pk,
            job.status,
        )
        return IGNORED
    if event.needs_fetch or event.status not in contract.STATUSES:
        send_on_commit(Step.REFRESH, job.pk)
        return PROCESSED
    return PROCESSED if jobs.mirror(job, event.data) else IGNORED


def _process_safely(
    record: WebhookEvent, event: RemoteEvent, *, created: bool | None = None
) -> tuple[str, str]:
    """:func:`_process` in a savepoint: ``(outcome, reason)``, never an exception.

    An exception is logged and becomes ``error`` (retried), except a ``DataError``
    or an ``ArithmeticError`` (a value out of any column's or computation's range),
    which becomes ``malformed`` with its reason: it would fail every retry. With
    ``created`` (a live delivery, not a replay), ``webhook_received`` is sent first,
    inside the savepoint: a failing receiver is an error the service retries.
    """
    try:
        with transaction.atomic():
            if created is not None:
                webhook_received.send(sender=SplitJob, event=record, created=created)
            return _process(record, event), ""
    except (DataError, ArithmeticError) as exc:
        # Deterministic: the same event fails the same way on every retry.
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        where = "the database" if isinstance(exc, DataError) else "a computation"
        reason = f"a value does not fit {where}: {detail or type(exc).__name__}"[:_MAX_REASON]
        logger.warning(
            "Webhook %r (%r for split %r) is signed but malformed: %s",
            event.id,
            event.type,
            event.split_id,
            reason,
        )
        return MALFORMED, reason
    except Exception:
        logger.exception(
            "Processing webhook %r (%r for split %r) failed; the service will retry.",
            event.id,
            event.type,
            event.split_id,
        )
        return ERROR, ""


def _finish(record: WebhookEvent, outcome: str, reason: str = "") -> None:
    record.outcome = outcome
    record.reason = reason[:_MAX_REASON]
    record.processed_at = None if outcome == ERROR else timezone.now()
    record.save(update_fields=["outcome", "reason", "processed_at"])


def _event_fields(event: RemoteEvent) -> dict[str, Any]:
    """The columns an event fills in (the view has checked that they fit)."""
    return {
        "type": event.type,
        "remote_id": event.split_id,
        "remote_status": (event.status or "")[:_MAX_STATUS],
        "payload": dict(event.raw),
    }


def _insert_or_count(event_id: str, fields: dict[str, Any]) -> tuple[WebhookEvent, bool]:
    """Insert the delivery, or count it on the existing row (locked until commit).

    Call inside a transaction: the lock on an existing row is held until it ends.
    """
    try:
        with transaction.atomic():
            return WebhookEvent.objects.create(event_id=event_id, **fields), True
    except IntegrityError:
        WebhookEvent.objects.filter(event_id=event_id).update(deliveries=F("deliveries") + 1)
        return WebhookEvent.objects.select_for_update().get(event_id=event_id), False


def handle_event(event: RemoteEvent) -> Delivery:
    """Record a verified event and act on it.

    ``outcome`` tells what happened; ``error`` means processing raised (the
    exception is logged) and the delivery should be answered with a 5xx.
    """
    fields = _event_fields(event)
    with transaction.atomic():
        record, created = _insert_or_count(event.id, fields)
        if not created and record.outcome not in REPROCESS_OUTCOMES:
            # The row keeps what the first delivery did; this one is only counted.
            webhook_received.send(sender=SplitJob, event=record, created=False)
            return Delivery(record, DUPLICATE)
        if record.outcome == MALFORMED:
            # An earlier delivery under this id was unreadable; this one is not.
            for name, value in fields.items():
                setattr(record, name, value)
            record.save(update_fields=list(fields))
        outcome, reason = _process_safely(record, event, created=created)
        _finish(record, outcome, reason)
    return Delivery(record, outcome, reason)


def record_malformed(
    *, event_id: str, type: str, remote_id: str, reason: str, summary: dict[str, Any]
) -> Delivery:
    """Record a signed delivery that is not a usable event; nothing else happens.

    The row (outcome ``malformed``) keeps ``reason`` and ``summary`` (what the
    view tells about the body, never the body). A redelivery under the same id is
    counted; a row that already has an outcome keeps it. No job is looked up and
    no signal is sent: nothing in the body is trusted.
    """
    reason = reason[:_MAX_REASON]
    fields = {
        "type": type,
        "remote_id": remote_id,
        "payload": summary,
        "outcome": MALFORMED,
        "reason": reason,
        "processed_at": timezone.now(),
    }
    with transaction.atomic():
        record, _created = _insert_or_count(event_id, fields)
    return Delivery(record, MALFORMED, reason)


def replay_unmatched(job: SplitJob) -> list[WebhookEvent]:
    """Process again the ``unknown_job`` events for ``job``'s remote id.

    A split can finish before the code that submitted it has committed the remote
    id; the webhook then found no job. Called once ``job.remote_id`` is stored.
    """
    if not job.remote_id:
        return []
    handled = []
    pending = WebhookEvent.objects.filter(remote_id=job.remote_id, outcome=UNKNOWN_JOB).order_by(
        "received_at"
    )
    for row in pending:
        with transaction.atomic():
            locked = WebhookEvent.objects.select_for_update().get(pk=row.pk)
            if locked.outcome != UNKNOWN_JOB:
                continue
            _finish(locked, *_process_safely(locked, RemoteEvent.from_api(locked.payload)))
        handled.append(locked)
    return handled
