"""The app's own direct-upload view: a signed, streaming, resumable ``PUT`` of one file.

``PUT <url from the ticket>`` with the file as the body (``curl -T song.wav URL``).
The URL's ``token`` (see :func:`~django_aistemsplitter.destinations.app.upload_token`)
is the only credential: no session, no CSRF token, so scripts and browsers use
it alike. The body is read from the WSGI stream in 256 KB pieces and written to a
staging file (never ``request.body``: constant memory, and Django's
``DATA_UPLOAD_MAX_MEMORY_SIZE`` does not apply); see
:mod:`django_aistemsplitter.destinations.app` for where the bytes go.

Answers (JSON):

* ``201`` ``{"received": n, "complete": true}``: the file is in storage; create
  the split with ``upload=<ticket id>``. ``200`` with ``"complete": false``: a
  part arrived (or, for an empty body, where the upload stands);
* to resume, send the rest with ``Content-Range: bytes <start>-<end>/<size>``,
  ``start`` being the ``Upload-Offset`` header of the last answer; any other
  start is ``409`` with the right ``Upload-Offset`` (and ``Range``);
* ``403`` bad or expired token, ``410`` ticket used, expired or gone, ``413``
  more bytes than the ticket declared (the staged part is dropped), ``411``
  without ``Content-Length``, ``409`` while another ``PUT`` holds the ticket,
  ``405`` for anything but ``PUT`` and ``OPTIONS``.

One writer at a time, without a long transaction: a request takes a *lease* on
the ticket (``UploadTicket.writing_until``, one conditional ``UPDATE`` in
autocommit), renews it every :data:`RENEW_EVERY` while it writes and releases it
when it ends. No transaction stays open while a slow client sends 200 MB (which
would break under ``idle_in_transaction_session_timeout``, pin a connection
under pgbouncer's transaction pooling and hold back vacuum); a worker killed
mid-upload leaves a lease that expires after :data:`LEASE`. While a lease is
live, a second ``PUT`` is ``409`` and
:func:`~django_aistemsplitter.tickets.redeem` refuses (``upload_busy``), so two
uploads never interleave and no split is made from a half-written file.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt

from django_aistemsplitter.destinations.app import (
    AppDestination,
    Progress,
    UploadConflictError,
    UploadInterruptedError,
    UploadTooLargeError,
    token_matches,
)
from django_aistemsplitter.models import UploadDestination, UploadTicket

logger = logging.getLogger(__name__)

__all__ = ["direct_upload_view"]

ALLOWED_METHODS = ("PUT", "OPTIONS")
OFFSET_HEADER = "Upload-Offset"
_RANGE = re.compile(r"^bytes\s+(?:(\d{1,19})-(\d{1,19})|\*)/(\d{1,19}|\*)$")

#: How long a request holds a ticket without renewing its lease: the longest a
#: ticket stays blocked after the worker writing it died.
LEASE = timedelta(seconds=60)
#: How often a request that is writing renews its lease (one short ``UPDATE``).
#: Far below :data:`LEASE`, so a renewal is never late and clocks a little apart
#: between hosts do not matter.
RENEW_EVERY = timedelta(seconds=10)


class _Busy(Exception):
    """Another request holds the ticket's lease."""


class _LeaseLost(Exception):
    """This request's lease ran out and another request took the ticket: stop writing."""


class _Lease:
    """This request's hold on a ticket: its ``writing_until``, renewed while it writes.

    The value written is also the proof of holding it: renewing, saving and
    releasing change the row only while it still carries that value. A request
    whose client stalled past :data:`LEASE`, and whose ticket another request has
    taken since, finds out at its next renewal and writes nothing more.
    """

    def __init__(self, ticket_id: uuid.UUID, until: datetime) -> None:
        self.ticket_id = ticket_id
        self.until = until
        self.held = True
        self._renewed = time.monotonic()

    @classmethod
    def take(cls, ticket_id: uuid.UUID) -> _Lease | None:
        """The lease of the unused, unexpired app ticket ``ticket_id``; None when not free.

        One conditional ``UPDATE`` in autocommit: no row lock outlives it. It
        waits only while a redeem holds the row (a moment), then finds the
        ticket used, or free again.
        """
        now = timezone.now()
        until = now + LEASE
        taken = UploadTicket.objects.filter(
            Q(writing_until__isnull=True) | Q(writing_until__lt=now),
            pk=ticket_id,
            destination=UploadDestination.APP,
            used_at__isnull=True,
            expires_at__gt=now,
        ).update(writing_until=until)
        return cls(ticket_id, until) if taken else None

    def _mine(self) -> QuerySet[UploadTicket]:
        return UploadTicket.objects.filter(pk=self.ticket_id, writing_until=self.until)

    def keep(self) -> None:
        """Renew the lease when :data:`RENEW_EVERY` has passed; raise :class:`_LeaseLost` if gone.

        Called before each piece is written (a clock read, mostly), so the write
        that follows is covered for at least ``LEASE - RENEW_EVERY``.
        """
        if not self.held:
            raise _LeaseLost
        if time.monotonic() - self._renewed < RENEW_EVERY.total_seconds():
            return
        until = timezone.now() + LEASE
        if not self._mine().update(writing_until=until):
            self.held = False
            raise _LeaseLost
        self.until = until
        self._renewed = time.monotonic()

    def release(self, ticket: UploadTicket | None = None, fields: Iterable[str] = ()) -> None:
        """Free the ticket, saving ``fields`` of ``ticket`` in the same ``UPDATE`` (safe to repeat).

        Nothing is written once the lease belongs to another request.
        """
        if not self.held:
            return
        self.held = False
        values: dict[str, Any] = {name: getattr(ticket, name) for name in fields}
        self._mine().update(writing_until=None, **values)


class _BadRequest(Exception):
    pass


def _answer(status: int, progress: Progress | None = None, detail: str = "") -> JsonResponse:
    body: dict[str, Any] = {}
    if detail:
        body["detail"] = detail
    if progress is not None:
        body.update({"received": progress.received, "complete": progress.complete})
    response = JsonResponse(body, status=status)
    if progress is not None:
        response[OFFSET_HEADER] = str(progress.received)
        if progress.received:
            response["Range"] = f"bytes=0-{progress.received - 1}"
    response["Cache-Control"] = "no-store"
    return response


def _content_length(request: HttpRequest) -> int | None:
    """The body's declared length; None when absent (chunked bodies cannot be streamed here)."""
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    raw = request.META.get("CONTENT_LENGTH")
    if raw in (None, ""):
        return None
    try:
        value = int(str(raw))
    except ValueError:
        raise _BadRequest(gettext("Content-Length is not a number.")) from None
    if value < 0:
        raise _BadRequest(gettext("Content-Length is not a number."))
    return value


def _content_range(request: HttpRequest, length: int) -> tuple[int | None, int | None]:
    """``(start, total)`` from ``Content-Range``; ``(None, None)`` without one.

    ``bytes */<total>`` (with an empty body) asks where the upload stands: start None.
    """
    header = request.META.get("HTTP_CONTENT_RANGE", "").strip()
    if not header:
        return None, None
    match = _RANGE.match(header)
    if match is None:
        raise _BadRequest(gettext("Content-Range must be 'bytes <start>-<end>/<size>'."))
    first, last, total_text = match.groups()
    total = None if total_text == "*" else int(total_text)
    if first is None:
        if length:
            raise _BadRequest(gettext("'Content-Range: bytes */<size>' goes with an empty body."))
        return None, total
    start, end = int(first), int(last)
    if end < start or end - start + 1 != length:
        raise _BadRequest(
            gettext("Content-Range covers %(count)d bytes but Content-Length is %(length)d.")
            % {"count": max(end - start + 1, 0), "length": length}
        )
    if total is not None and end >= total:
        raise _BadRequest(gettext("Content-Range ends past the file's size."))
    return start, total


def _refusal(ticket_id: uuid.UUID) -> JsonResponse:
    """Why the lease could not be taken: the ticket is gone, used or expired (410), or busy."""
    ticket = UploadTicket.objects.filter(pk=ticket_id, destination=UploadDestination.APP).first()
    if ticket is None:
        return _gone()
    if ticket.used_at is not None or ticket.is_expired:
        return _answer(
            410, detail=gettext("This upload ticket is used or expired; ask for a new one.")
        )
    raise _Busy


def _gone() -> JsonResponse:
    return _answer(410, detail=gettext("This upload ticket is gone; ask for a new one."))


def _put(request: HttpRequest, ticket_id: uuid.UUID, length: int) -> JsonResponse:
    start, total = _content_range(request, length)
    lease = _Lease.take(ticket_id)
    if lease is None:
        return _refusal(ticket_id)
    try:
        ticket = UploadTicket.objects.filter(pk=ticket_id).first()
        if ticket is None:  # deleted since (purged, or its audio refused)
            return _gone()
        return _write(request, ticket, lease, length, start, total)
    finally:
        lease.release()  # a no-op when _write released it with what it saved


def _write(
    request: HttpRequest,
    ticket: UploadTicket,
    lease: _Lease,
    length: int,
    start: int | None,
    total: int | None,
) -> JsonResponse:
    """Check the request against the ticket and write its body, holding ``lease``."""
    destination = AppDestination()
    if total is not None and total != ticket.size:
        if total > ticket.size:
            destination.drop_staged(ticket)
            response = _answer(
                413,
                destination.progress(ticket),
                gettext("This upload is limited to the %(size)d bytes its ticket declared.")
                % {"size": ticket.size},
            )
            lease.release(ticket, ["received_bytes"])
            return response
        return _answer(
            400,
            destination.progress(ticket),
            gettext("The ticket declared %(size)d bytes, not %(total)d.")
            % {"size": ticket.size, "total": total},
        )
    if length == 0:  # nothing sent: where does the upload stand?
        return _answer(200, destination.progress(ticket))
    status = 200
    detail = ""
    try:
        progress = destination.receive(
            ticket, request.read, length=length, start=start, keep=lease.keep
        )
        if progress.complete:
            status = 201
    except UploadConflictError as exc:
        return _answer(409, destination.progress(ticket), str(exc))
    except UploadTooLargeError as exc:
        status, detail = 413, str(exc)
    except UploadInterruptedError:
        status = 400
        detail = gettext("The body ended before Content-Length bytes; resume from here.")
    except _LeaseLost:
        # The client stalled past LEASE and another request took the ticket: what
        # is staged is that request's now.
        logger.warning("upload of ticket %s stopped: its lease was taken over", ticket.pk)
        raise _Busy from None
    response = _answer(status, destination.progress(ticket), detail)
    lease.release(ticket, ["received_bytes", "storage_name"])
    return response


@transaction.non_atomic_requests  # even under ATOMIC_REQUESTS: no transaction while it streams
@csrf_exempt
def direct_upload_view(request: HttpRequest, ticket_id: uuid.UUID) -> HttpResponse:
    """Receive (part of) the file of the app-destination ticket ``ticket_id``."""
    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
        response["Allow"] = ", ".join(ALLOWED_METHODS)
        return response
    if request.method != "PUT":
        return HttpResponseNotAllowed(ALLOWED_METHODS)
    if not token_matches(request.GET.get("token", ""), ticket_id):
        return _answer(
            403, detail=gettext("This upload link is not valid or has expired; ask for a new one.")
        )
    try:
        length = _content_length(request)
        if length is None:
            return _answer(411, detail=gettext("Send the body with a Content-Length."))
        return _put(request, ticket_id, length)
    except _BadRequest as exc:
        return _answer(400, detail=str(exc))
    except _Busy:
        return _answer(
            409, detail=gettext("Another upload to this ticket is in progress; try again later.")
        )
