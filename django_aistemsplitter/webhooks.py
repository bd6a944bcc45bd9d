"""The webhook receiver: verify, record, then treat the delivery as a trigger.

Order of work for each ``POST``:

1. **Verify** the ``AIStemSplitter-Signature`` header against the *raw* body
   (before any JSON parsing) with the configured secret(s). A missing, malformed,
   stale or non-matching signature, or a body that is not an event, answers 400
   and records nothing.
2. **Record** the delivery as a :class:`~django_aistemsplitter.models.WebhookEvent`
   keyed on its unique event id (thin events get an id derived from the split id
   and status). The insert itself is the deduplication: a repeated or concurrent
   delivery hits the unique index (PostgreSQL makes the second insert wait for the
   first transaction), bumps ``deliveries`` with an ``F()`` update and, when the
   first delivery already reached a final outcome, stops there (``duplicate``).
   A delivery whose earlier processing ended in ``error`` (or found no job) is
   processed again, so the service's retry of a 500 is not swallowed.
3. Send :data:`~django_aistemsplitter.signals.webhook_received`.
4. **Process**: the event is a trigger, not the truth. The job is found by its
   remote id; an event that would move it backwards is ``ignored``; a thin event
   (or anything short of what we need) enqueues ``refresh_split`` after commit; a
   full event is mirrored with ``apply_remote_split``, which enqueues the ingest.
   Nothing slow runs in the request.

Recording and processing share one transaction (the view is exempt from
``ATOMIC_REQUESTS``); processing runs in a savepoint, so a failure rolls back its
own writes, stores the outcome ``error`` and answers 500 so the service retries.

An event for a split no job knows (``unknown_job``) still answers 200: retrying
cannot help when the job was deleted. A webhook that beats the commit of the job's
remote id still finds its job through the job id the hosted backend puts in the
split's metadata; for events without it (the thin shape), :func:`process_unmatched`
replays them once the remote id is stored, and reconciliation polls the rest.
"""

from __future__ import annotations

import functools
import logging
import uuid
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from django_aistemsplitter import contract
from django_aistemsplitter.backends.hosted import (
    ATTEMPT_METADATA_KEY,
    JOB_METADATA_KEY,
)
from django_aistemsplitter.backends.hosted import webhook_url as get_webhook_url
from django_aistemsplitter.client import AiStemSplitter
from django_aistemsplitter.client.types import WebhookEvent as RemoteEvent
from django_aistemsplitter.conf import SETTINGS_NAME, get_setting, user_settings
from django_aistemsplitter.exceptions import ConfigurationError, SignatureVerificationError
from django_aistemsplitter.jobs import could_advance
from django_aistemsplitter.models import (
    SplitJob,
    WebhookEvent,
    WebhookOutcome,
)
from django_aistemsplitter.signals import webhook_received

if TYPE_CHECKING:
    from django_aistemsplitter.client.types import Split

__all__ = [
    "WebhookView",
    "get_webhook_url",
    "handle_event",
    "parse_webhook",
    "process_unmatched",
    "webhook_secrets",
    "webhook_view",
]

logger = logging.getLogger(__name__)

# Choice values as plain strings (``str()`` of a Django choice is its value).
RECEIVED = str(WebhookOutcome.RECEIVED)
PROCESSED = str(WebhookOutcome.PROCESSED)
DUPLICATE = str(WebhookOutcome.DUPLICATE)
IGNORED = str(WebhookOutcome.IGNORED)
UNKNOWN_JOB = str(WebhookOutcome.UNKNOWN_JOB)
ERROR = str(WebhookOutcome.ERROR)

#: Stored outcomes after which a redelivery is processed again.
REPROCESS_OUTCOMES = frozenset({RECEIVED, ERROR, UNKNOWN_JOB})


def _max_length(field: str, default: int) -> int:
    return getattr(WebhookEvent._meta.get_field(field), "max_length", None) or default


_MAX_EVENT_ID = _max_length("event_id", 128)
_MAX_TYPE = _max_length("type", 64)
_MAX_REMOTE_ID = _max_length("remote_id", 128)
_MAX_STATUS = _max_length("remote_status", 16)


class MalformedWebhookError(ValueError):
    """A correctly signed body that is not an event we can read."""


def webhook_secrets() -> list[str]:
    """The configured signing secret(s); several during a rotation.

    ``WEBHOOK_SECRET`` may be a list; the environment variable, which can only
    hold one string, separates rotated secrets with commas (as the client does).
    Raises :class:`ConfigurationError` when none is set: the receiver never
    accepts unsigned deliveries. The system check ``aistemsplitter.E002`` reports
    this before the first request.
    """
    value = get_setting("WEBHOOK_SECRET")
    if isinstance(value, str):
        from_env = "WEBHOOK_SECRET" not in user_settings()
        candidates = value.split(",") if from_env else [value]
    elif isinstance(value, (list, tuple)):
        candidates = [s for s in value if isinstance(s, str)]
    else:
        candidates = []
    secrets = [s.strip() for s in candidates if s.strip()]
    if not secrets:
        raise ConfigurationError(
            f"Set {SETTINGS_NAME}['WEBHOOK_SECRET'] (or the environment variable "
            f"{contract.WEBHOOK_SECRET_ENV}) to the webhook signing secret to receive webhooks."
        )
    return secrets


@functools.lru_cache(maxsize=4)
def _verifier(secrets: tuple[str, ...]) -> AiStemSplitter:
    """A client used only for ``verify_webhook`` (pure computation, no requests)."""
    return AiStemSplitter(webhook_secret=secrets)


def parse_webhook(headers: Any, body: bytes) -> RemoteEvent:
    """Verify ``body`` against the signature header, then decode the event.

    Verification and parsing are the API client's ``verify_webhook`` (both event
    shapes); on top, the fields we store must fit their columns. ``headers`` is
    any case-insensitive mapping (``request.headers``). Raises
    :class:`SignatureVerificationError` or :class:`MalformedWebhookError`.
    """
    event = _verifier(tuple(webhook_secrets())).verify_webhook(
        headers, body, tolerance=get_setting("WEBHOOK_TOLERANCE")
    )
    if len(event.id) > _MAX_EVENT_ID:
        raise MalformedWebhookError("event id is too long")
    if len(event.split_id) > _MAX_REMOTE_ID:
        raise MalformedWebhookError("split id is too long")
    if not event.type or len(event.type) > _MAX_TYPE:
        raise MalformedWebhookError("event has no usable type")
    return event


# --- recording and processing --------------------------------------------------


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


def _enqueue_refresh(job: SplitJob) -> None:
    from django_aistemsplitter.tasks import enqueue_on_commit, refresh_split

    enqueue_on_commit(refresh_split, str(job.pk))


def _apply(job: SplitJob, split: Split) -> Any:
    from django_aistemsplitter.jobs import apply_remote_split

    return apply_remote_split(job, split)


def _process(record: WebhookEvent, event: RemoteEvent) -> str:
    job = _find_job(event)
    if job is None:
        logger.info("Webhook %s names split %s, which no job knows.", event.id, event.split_id)
        return UNKNOWN_JOB
    if record.job_id != job.pk:
        record.job = job
        WebhookEvent.objects.filter(pk=record.pk).update(job=job)
    if not could_advance(job, event.status):
        logger.info(
            "Webhook %s (%s) ignored: job %s is already %s.",
            event.id,
            event.status,
            job.pk,
            job.status,
        )
        return IGNORED
    if event.needs_fetch or event.status not in contract.STATUSES:
        _enqueue_refresh(job)
        return PROCESSED
    if _apply(job, event.data) is False:
        return IGNORED
    return PROCESSED


def _record(event: RemoteEvent) -> tuple[WebhookEvent, bool]:
    """Insert the delivery, or count it on the existing row (locked until commit)."""
    try:
        with transaction.atomic():
            record = WebhookEvent.objects.create(
                event_id=event.id,
                type=event.type,
                remote_id=event.split_id,
                remote_status=(event.status or "")[:_MAX_STATUS],
                payload=dict(event.raw),
            )
        return record, True
    except IntegrityError:
        WebhookEvent.objects.filter(event_id=event.id).update(deliveries=F("deliveries") + 1)
        return WebhookEvent.objects.select_for_update().get(event_id=event.id), False


def handle_event(event: RemoteEvent) -> WebhookEvent:
    """Record a verified event and act on it; returns the stored row.

    ``row.outcome`` tells what happened; ``error`` means processing raised (the
    exception is logged) and the delivery should be answered with a 5xx.
    """
    with transaction.atomic():
        record, created = _record(event)
        if not created and record.outcome not in REPROCESS_OUTCOMES:
            WebhookEvent.objects.filter(pk=record.pk).update(outcome=DUPLICATE)
            record.refresh_from_db()
            webhook_received.send(sender=SplitJob, event=record, created=False)
            return record
        try:
            with transaction.atomic():
                webhook_received.send(sender=SplitJob, event=record, created=created)
                outcome = _process(record, event)
        except Exception:
            logger.exception(
                "Processing webhook %s (%s for split %s) failed; the service will retry.",
                event.id,
                event.type,
                event.split_id,
            )
            outcome = ERROR
        record.outcome = outcome
        record.processed_at = None if outcome == ERROR else timezone.now()
        record.save(update_fields=["outcome", "processed_at"])
    return record


def process_unmatched(job: SplitJob) -> list[WebhookEvent]:
    """Process again the ``unknown_job`` events for ``job``'s remote id.

    A split can finish before the code that submitted it has committed the remote
    id; the webhook then found no job. Call this after storing ``job.remote_id``.
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
            event = RemoteEvent.from_api(locked.payload)
            try:
                with transaction.atomic():
                    outcome = _process(locked, event)
            except Exception:
                logger.exception("Processing stored webhook %s failed.", locked.event_id)
                outcome = ERROR
            locked.outcome = outcome
            locked.processed_at = None if outcome == ERROR else timezone.now()
            locked.save(update_fields=["outcome", "processed_at"])
        handled.append(locked)
    return handled


# --- the view --------------------------------------------------------------------


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(transaction.non_atomic_requests, name="dispatch")
class WebhookView(View):
    """``POST /<prefix>/webhook/``: signed deliveries from AiStemSplitter.

    Subclass and override :meth:`handle` to change what a verified event does.
    """

    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            event = parse_webhook(request.headers, request.body)
        except (SignatureVerificationError, MalformedWebhookError) as exc:
            # The reason only: never the header, the body or a secret.
            logger.warning(
                "Rejected AiStemSplitter webhook from %s: %s",
                request.META.get("REMOTE_ADDR", "?"),
                exc,
            )
            return HttpResponseBadRequest("invalid webhook delivery", content_type="text/plain")
        record = self.handle(event)
        status = 500 if record.outcome == ERROR else 200
        return JsonResponse({"received": status == 200, "outcome": record.outcome}, status=status)

    def handle(self, event: RemoteEvent) -> WebhookEvent:
        return handle_event(event)


webhook_view = WebhookView.as_view()
