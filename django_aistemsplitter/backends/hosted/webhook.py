"""The hosted service's webhook receiver: verify, then hand the event on.

For each ``POST``:

1. **Bound** the body: a ``Content-Length`` above ``WEBHOOK_MAX_BYTES`` is answered
   413 before a byte is read, and the read stops one byte past the limit when the
   header is missing or wrong (chunked bodies).
2. **Verify** the ``AIStemSplitter-Signature`` header against the *raw* body,
   before any JSON parsing, with the configured secret(s), using the client's pure
   :func:`~django_aistemsplitter.client.verify_signature`. A missing, malformed,
   stale or non-matching signature answers 400 with a short reason and records
   nothing: whoever sent it is not the service, and storing what strangers send
   would let them fill the table.
3. **Read** the event with the client's pure
   :func:`~django_aistemsplitter.client.parse_event`, then check that it fits our
   storage (column lengths, nesting depth).
4. Hand the event to :func:`django_aistemsplitter.deliveries.handle_event`, which
   records it (deduplicated by event id, first outcome kept), sends
   ``webhook_received`` and moves the job along; the answer is 200, or 500 when
   processing failed in a way worth retrying.

**A signed but malformed event** (not JSON, ``NaN``, a NUL character, nesting too
deep, wrong types, fields too long for their columns, a value the database
refuses) is answered **200** with the outcome ``malformed``, and one
``WebhookEvent`` row records it with the ``reason``, a summary (size and sha256)
instead of the body, under the event's own id when it can be read, else an id
derived from the body's sha256. The service retries every non-2xx answer, and the
same bytes would be refused the same way on every retry, so a 4xx there would only
make it retry forever; 200 stops it, and the row is what an operator looks at. No
job is touched and no signal is sent: nothing in such an event is trusted.

Responses never contain the body, a header or a secret: JSON
``{"received": false, "error": "<reason>"}`` on refusal,
``{"received": true, "outcome": ...}`` otherwise (with ``reason`` when malformed).

The view is exempt from ``ATOMIC_REQUESTS``: recording and processing manage
their own transaction. A new delivery is one transaction without a savepoint
(``BEGIN``, ``SELECT`` the job, ``INSERT ... ON CONFLICT DO NOTHING`` the event,
``UPDATE`` the job, ``COMMIT``); a request-wide transaction around it would only
add a savepoint per delivery and hold the job's row lock longer.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from django_aistemsplitter import contract, deliveries
from django_aistemsplitter.client.events import parse_event
from django_aistemsplitter.client.signing import verify_signature
from django_aistemsplitter.client.types import WebhookEvent as RemoteEvent
from django_aistemsplitter.conf import SETTINGS_NAME, configured_webhook_secrets, get_setting
from django_aistemsplitter.exceptions import (
    ConfigurationError,
    MalformedWebhookError,
    SignatureVerificationError,
)
from django_aistemsplitter.jsonvalues import MAX_JSON_DEPTH, json_problem

__all__ = [
    "MAX_DEPTH",
    "WebhookView",
    "malformed_identity",
    "parse_webhook",
    "webhook_secrets",
    "webhook_view",
]

logger = logging.getLogger(__name__)

#: Deepest nesting of objects and lists stored from an event (the one JSON rule,
#: :mod:`django_aistemsplitter.jsonvalues`).
MAX_DEPTH = MAX_JSON_DEPTH

_READ_CHUNK = 64 * 1024


_MAX_EVENT_ID = deliveries.column_max_length("event_id", 128)
_MAX_TYPE = deliveries.column_max_length("type", 64)
_MAX_REMOTE_ID = deliveries.column_max_length("remote_id", 128)


def webhook_secrets() -> list[str]:
    """The configured signing secret(s); several during a rotation.

    ``WEBHOOK_SECRET`` may be a list; the environment variable, which can only
    hold one string, separates rotated secrets with commas
    (:func:`~django_aistemsplitter.conf.configured_webhook_secrets`, the one reader).
    Raises :class:`ConfigurationError` when none is set or the value has the
    wrong type: the receiver never accepts unsigned deliveries. The system checks
    ``aistemsplitter.E002`` and ``E009`` report this before the first request.
    """
    try:
        secrets = configured_webhook_secrets()
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{SETTINGS_NAME}['WEBHOOK_SECRET']: {exc}") from None
    if not secrets:
        raise ConfigurationError(
            f"Set {SETTINGS_NAME}['WEBHOOK_SECRET'] (or the environment variable "
            f"{contract.WEBHOOK_SECRET_ENV}) to the webhook signing secret to receive webhooks."
        )
    return list(secrets)


def _check_storable(event: RemoteEvent) -> None:
    """Refuse an event whose stored fields would not fit their columns."""
    if len(event.id) > _MAX_EVENT_ID:
        raise MalformedWebhookError("event id is too long")
    if len(event.split_id) > _MAX_REMOTE_ID:
        raise MalformedWebhookError("split id is too long")
    if not event.type or len(event.type) > _MAX_TYPE:
        raise MalformedWebhookError("event has no usable type")
    problem = json_problem(event.raw, storable=True)
    if problem is not None:
        raise MalformedWebhookError(f"event cannot be stored: {problem}")


def parse_webhook(headers: Any, body: bytes) -> RemoteEvent:
    """Verify ``body`` against the signature header, then read the event.

    ``headers`` is any case-insensitive mapping (``request.headers``). Raises
    :class:`SignatureVerificationError` when the delivery is not proven to come
    from the service, and its subclass :class:`MalformedWebhookError` when it is
    signed but unusable (catch that one first).
    """
    signed_at = verify_signature(
        body,
        headers.get(contract.SIGNATURE_HEADER),
        webhook_secrets(),
        tolerance=get_setting("WEBHOOK_TOLERANCE"),
    )
    event = parse_event(body, signed_at=signed_at)
    _check_storable(event)
    return event


def _clean(value: Any, max_length: int) -> str | None:
    """``value`` if it is text that can be stored in a column of ``max_length``."""
    if not isinstance(value, str) or not 0 < len(value) <= max_length or "\x00" in value:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


def malformed_identity(body: bytes) -> tuple[str, str, str]:
    """``(event_id, type, split_id)`` to record a signed body that is not a usable event.

    The event's own id (and type and split id) when the body is a JSON object,
    storable, whose fields are clean strings; otherwise an id derived from the
    body's sha256 (so a retry of the same bytes is counted on the same row) and
    empty strings.
    """
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        payload = None
    if not isinstance(payload, Mapping) or json_problem(payload, strings=False) is not None:
        payload = {}
    data = payload.get("data")
    data = data if isinstance(data, Mapping) else {}
    event_id = _clean(payload.get("id"), _MAX_EVENT_ID)
    if event_id is None:
        event_id = "evt_malformed_" + hashlib.sha256(body).hexdigest()[:32]
    kind = _clean(payload.get("type"), _MAX_TYPE) or _clean(payload.get("event"), _MAX_TYPE)
    return event_id, kind or "", _clean(data.get("id"), _MAX_REMOTE_ID) or ""


def _content_length(request: HttpRequest) -> int | None:
    value = str(request.META.get("CONTENT_LENGTH") or "").strip()
    return int(value) if value.isascii() and value.isdigit() else None


def _read_body(request: HttpRequest, limit: int) -> bytes | None:
    """The raw body, or ``None`` when it is longer than ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = request.read(min(_READ_CHUNK, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return None if size > limit else b"".join(chunks)


def _refuse(request: HttpRequest, status: int, reason: str) -> JsonResponse:
    # The reason only: never the header, the body or a secret.
    logger.warning(
        "Rejected AiStemSplitter webhook from %s: %s", request.META.get("REMOTE_ADDR", "?"), reason
    )
    return JsonResponse({"received": False, "error": reason}, status=status)


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(transaction.non_atomic_requests, name="dispatch")
class WebhookView(View):
    """``POST /<prefix>/webhook/``: signed deliveries from AiStemSplitter.

    Subclass and override :meth:`handle` to change what a verified event does (it
    returns a :class:`~django_aistemsplitter.deliveries.Delivery`), or
    :meth:`malformed` to change what a signed but unusable one does.
    """

    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        limit = int(get_setting("WEBHOOK_MAX_BYTES"))
        too_big = f"body is larger than {limit} bytes"
        length = _content_length(request)
        if length is not None and length > limit:
            return _refuse(request, 413, too_big)
        body = _read_body(request, limit)
        if body is None:
            return _refuse(request, 413, too_big)
        try:
            event = parse_webhook(request.headers, body)
        except MalformedWebhookError as exc:
            return self.malformed(request, body, str(exc))
        except SignatureVerificationError as exc:
            return _refuse(request, 400, str(exc))
        delivery = self.handle(event)
        if delivery.outcome == deliveries.MALFORMED:
            return self._answer_malformed(delivery)
        status = 500 if delivery.outcome == deliveries.ERROR else 200
        return JsonResponse({"received": status == 200, "outcome": delivery.outcome}, status=status)

    def handle(self, event: RemoteEvent) -> deliveries.Delivery:
        """Record and process a verified event (``deliveries.handle_event``)."""
        return deliveries.handle_event(event)

    def malformed(self, request: HttpRequest, body: bytes, reason: str) -> HttpResponse:
        """Record a signed delivery that is not a usable event; answer 200 (see above)."""
        event_id, kind, split_id = malformed_identity(body)
        logger.warning(
            "AiStemSplitter webhook %r from %s is signed but malformed: %s",
            event_id,
            request.META.get("REMOTE_ADDR", "?"),
            reason,
        )
        return self._answer_malformed(
            deliveries.record_malformed(
                event_id=event_id,
                type=kind,
                remote_id=split_id,
                reason=reason,
                summary={"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()},
            )
        )

    @staticmethod
    def _answer_malformed(delivery: deliveries.Delivery) -> JsonResponse:
        return JsonResponse(
            {"received": True, "outcome": deliveries.MALFORMED, "reason": delivery.reason}
        )


webhook_view = WebhookView.as_view()
