"""Webhook deliveries: recorded once, then treated as a trigger for their job.

The view (:mod:`django_aistemsplitter.backends.hosted.webhook`) verifies a
delivery and hands the event here; everything after verification is job state,
so it lives below the entry points.

**A new delivery** costs one transaction and no savepoint (five statements for a
state change: ``BEGIN``, ``SELECT`` the job, ``INSERT`` the event, ``UPDATE`` the
job, ``COMMIT``):

* **Find** the job by its remote id (:func:`_find_job`) and decide what the event
  does to it: nothing for a split no job knows (``unknown_job``) or an event that
  would move the job backwards (``ignored``), else ``processed``.
* **Record** the delivery as a :class:`~django_aistemsplitter.models.WebhookEvent`
  with its job and that outcome in one ``INSERT ... ON CONFLICT (event_id) DO
  NOTHING`` (:func:`_insert_new`). The insert itself is the deduplication: a
  concurrent delivery of the same event waits on the unique index until the first
  transaction ends, then inserts nothing and takes the redelivery path below.
* Send :data:`~django_aistemsplitter.signals.webhook_received` (``created=True``;
  the row it carries shows the outcome ``received``: the delivery is recorded,
  not yet processed).
* **Process**: the event is a trigger, not the truth. A thin event (or anything
  short of what we need) asks for a ``refresh`` step after commit; a full event
  is mirrored with :func:`~django_aistemsplitter.jobs.mirror`, which claims and
  asks for the ingest. Nothing slow runs in the request. Should the mirror change
  nothing after all (a concurrent writer got there first), the row is corrected
  to ``ignored``.

If finding the job, the signal or the processing raises, the whole transaction
rolls back (so no write of this delivery survives) and the delivery is recorded
in a second one with the outcome ``error`` (the view answers 500 and the service
retries), except a :class:`~django.db.DataError` or an :class:`ArithmeticError`:
a value the database (or the cost computation) refuses is refused again on every
retry, so it is stored as ``malformed`` with its reason, like a signed body the
view could not read (:func:`record_malformed`).

**A redelivery** (the insert found the event id taken) bumps ``deliveries`` with
an ``F()`` update and locks the row until commit. When the first delivery already
reached a final outcome, the row **keeps that first outcome** (the audit trail
says what was done, ``deliveries`` how often it was asked), ``webhook_received``
is sent with ``created=False`` and this delivery is answered ``duplicate``. A
delivery whose earlier processing ended in ``error``, found no job or was
``malformed`` is processed again, inside a savepoint (this path only), so the
service's retry of a 500 (or its corrected event) is not swallowed.

An event for a split no job knows (``unknown_job``) is kept: a split can finish
before the task that submitted it has committed the remote id, so
:func:`replay_unmatched` processes those events again once it has.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import DataError, IntegrityError, connections, router, transaction
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

#: Database vendors whose ``INSERT ... ON CONFLICT (...) DO NOTHING RETURNING``
#: :func:`_insert_new` uses; any other falls back to an insert in a savepoint.
_ON_CONFLICT_VENDORS = frozenset({"postgresql", "sqlite"})
_EVENT_ID_COLUMN: str = getattr(WebhookEvent._meta.get_field("event_id"), "column", "event_id")


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


class _Failed(Exception):
    """Processing a new delivery raised: unwinds its transaction, carrying the outcome."""

    def __init__(self, outcome: str, reason: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome
        self.reason = reason


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


def _plan(job: SplitJob | None, event: RemoteEvent) -> str:
    """What ``event`` does to ``job``, decided before any write: the outcome to store."""
    if job is None:
        return UNKNOWN_JOB
    return PROCESSED if jobs.could_advance(job, event.status) else IGNORED


def _log_skipped(job: SplitJob | None, event: RemoteEvent, outcome: str) -> None:
    """Say why a delivery left its job alone (once it is known not to be a duplicate)."""
    if outcome == UNKNOWN_JOB:
        logger.info("Webhook %r names split %r, which no job knows.", event.id, event.split_id)
    elif outcome == IGNORED and job is not None:
        logger.info(
            "Webhook %r (%r) ignored: job %s is already %s.",
            event.id,
            event.status,
            job.pk,
            job.status,
        )


def _act(job: SplitJob, event: RemoteEvent) -> str:
    """Apply an event :func:`_plan` said could move ``job``: ``processed`` or ``ignored``.

    The job's state rules are :mod:`~django_aistemsplitter.jobs`' own; a thin
    event (or a status we do not know) only asks for a fresh GET after commit.
    """
    if event.needs_fetch or event.status not in contract.STATUSES:
        send_on_commit(Step.REFRESH, job.pk)
        return PROCESSED
    return PROCESSED if jobs.mirror(job, event.data) else IGNORED


def _process(record: WebhookEvent, event: RemoteEvent) -> str:
    """Find the job and act on ``event`` for an already stored ``record`` (redelivery, replay)."""
    job = _find_job(event)
    outcome = _plan(job, event)
    if job is not None and record.job_id != job.pk:
        record.job = job
        WebhookEvent.objects.filter(pk=record.pk).update(job=job)
    if job is None or outcome != PROCESSED:
        _log_skipped(job, event, outcome)
        return outcome
    return _act(job, event)


def _failure(exc: Exception, event: RemoteEvent) -> tuple[str, str]:
    """``(outcome, reason)`` for an exception raised while processing ``event`` (logged).

    A ``DataError`` or an ``ArithmeticError`` (a value out of any column's or
    computation's range) is ``malformed`` with its reason: it would fail every
    retry. Anything else is ``error``, which the service retries.
    """
    if isinstance(exc, (DataError, ArithmeticError)):
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
    logger.error(
        "Processing webhook %r (%r for split %r) failed; the service will retry.",
        event.id,
        event.type,
        event.split_id,
        exc_info=exc,
    )
    return ERROR, ""


def _process_safely(
    record: WebhookEvent, event: RemoteEvent, *, created: bool | None = None
) -> tuple[str, str]:
    """:func:`_process` in a savepoint: ``(outcome, reason)``, never an exception.

    For a stored row processed again (a redelivery, a replay): a failure rolls
    back only this processing, and the row takes the outcome of :func:`_failure`.
    With ``created`` (a live delivery, not a replay), ``webhook_received`` is sent
    first, inside the savepoint: a failing receiver is an error the service retries.
    """
    try:
        with transaction.atomic():
            if created is not None:
                webhook_received.send(sender=SplitJob, event=record, created=created)
            return _process(record, event), ""
    except Exception as exc:
        return _failure(exc, event)


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


def _insert_new(event_id: str, values: dict[str, Any]) -> WebhookEvent | None:
    """Insert a row for ``event_id`` with ``values``; ``None`` when the id is taken.

    One ``INSERT ... ON CONFLICT (event_id) DO NOTHING RETURNING id`` on
    PostgreSQL and SQLite, so a new event costs no savepoint: PostgreSQL makes a
    concurrent insert of the same id wait until the first transaction ends, then
    do nothing. Other databases insert inside a savepoint and catch the
    ``IntegrityError``.
    """
    record = WebhookEvent(event_id=event_id, **values)
    alias = router.db_for_write(WebhookEvent, instance=record)
    connection = connections[alias]
    if not (
        connection.vendor in _ON_CONFLICT_VENDORS
        and connection.features.can_return_columns_from_insert
    ):
        try:
            with transaction.atomic(using=alias):
                record.save(force_insert=True, using=alias)
        except IntegrityError:
            return None
        return record
    meta = WebhookEvent._meta
    fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field]
    quote = connection.ops.quote_name
    # Only quoted identifiers from the model's own metadata go into the text.
    sql = "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO NOTHING RETURNING {}".format(  # noqa: S608
        quote(meta.db_table),
        ", ".join(quote(str(f.column)) for f in fields),
        ", ".join(["%s"] * len(fields)),
        quote(_EVENT_ID_COLUMN),
        quote(str(meta.pk.column) if meta.pk is not None else "id"),
    )
    # What Model.save() would send: pre_save fills auto_now_add, prep adapts JSON.
    params = [f.get_db_prep_save(f.pre_save(record, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    record.pk = row[0]
    record._state.adding = False
    record._state.db = alias
    return record


def _count(event_id: str) -> WebhookEvent:
    """Count one more delivery on ``event_id``'s row and lock it until the transaction ends."""
    WebhookEvent.objects.filter(event_id=event_id).update(deliveries=F("deliveries") + 1)
    return WebhookEvent.objects.select_for_update().get(event_id=event_id)


def _redeliver(event: RemoteEvent, fields: dict[str, Any]) -> Delivery:
    """A delivery whose event id is already stored (call inside a transaction).

    Counted; a settled row keeps its first outcome and this delivery is a
    ``duplicate``; any other is processed again in a savepoint.
    """
    record = _count(event.id)
    if record.outcome not in REPROCESS_OUTCOMES:
        # The row keeps what the first delivery did; this one is only counted.
        webhook_received.send(sender=SplitJob, event=record, created=False)
        return Delivery(record, DUPLICATE)
    if record.outcome == MALFORMED:
        # An earlier delivery under this id was unreadable; this one is not.
        for name, value in fields.items():
            setattr(record, name, value)
        record.save(update_fields=list(fields))
    outcome, reason = _process_safely(record, event, created=False)
    _finish(record, outcome, reason)
    return Delivery(record, outcome, reason)


def _record_failed(event: RemoteEvent, fields: dict[str, Any], failed: _Failed) -> Delivery:
    """Store a new delivery whose processing raised (its own writes are rolled back).

    Should a concurrent delivery of the same event have been stored meanwhile,
    this one is counted on its row like any redelivery: a settled row keeps its
    outcome (``duplicate``), any other takes this failure's.
    """
    stamp = None if failed.outcome == ERROR else timezone.now()
    values = {**fields, "outcome": failed.outcome, "reason": failed.reason, "processed_at": stamp}
    with transaction.atomic():
        record = _insert_new(event.id, values)
        if record is not None:
            return Delivery(record, failed.outcome, failed.reason)
        record = _count(event.id)
        if record.outcome not in REPROCESS_OUTCOMES:
            webhook_received.send(sender=SplitJob, event=record, created=False)
            return Delivery(record, DUPLICATE)
        if record.outcome == MALFORMED:
            for name, value in fields.items():
                setattr(record, name, value)
            record.save(update_fields=list(fields))
        _finish(record, failed.outcome, failed.reason)
    return Delivery(record, failed.outcome, failed.reason)


def handle_event(event: RemoteEvent) -> Delivery:
    """Record a verified event and act on it.

    ``outcome`` tells what happened; ``error`` means processing raised (the
    exception is logged) and the delivery should be answered with a 5xx.
    """
    fields = _event_fields(event)
    try:
        with transaction.atomic():
            try:
                job = _find_job(event)
                planned = _plan(job, event)
            except Exception as exc:
                raise _Failed(*_failure(exc, event)) from exc
            stamp = timezone.now()
            record = _insert_new(
                event.id, {**fields, "job": job, "outcome": planned, "processed_at": stamp}
            )
            if record is None:
                return _redeliver(event, fields)
            try:
                # Receivers see the delivery as recorded, before it is processed.
                record.outcome, record.processed_at = RECEIVED, None
                webhook_received.send(sender=SplitJob, event=record, created=True)
                if job is None or planned != PROCESSED:
                    _log_skipped(job, event, planned)
                    outcome = planned
                else:
                    outcome = _act(job, event)
                if outcome != planned:
                    WebhookEvent.objects.filter(pk=record.pk).update(outcome=outcome)
            except Exception as exc:
                raise _Failed(*_failure(exc, event)) from exc
            record.outcome, record.processed_at = outcome, stamp
    except _Failed as failed:
        return _record_failed(event, fields, failed)
    return Delivery(record, outcome)


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
        record = _insert_new(event_id, fields)
        if record is None:
            record = _count(event_id)
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
