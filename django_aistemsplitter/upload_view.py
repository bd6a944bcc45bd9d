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

The ticket's row is locked (``NOWAIT``) for the whole request, so two uploads to
one ticket never interleave and a split cannot be created from a half-written file.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from django.db import OperationalError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
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
from django_aistemsplitter.tickets import is_lock_conflict

logger = logging.getLogger(__name__)

__all__ = ["direct_upload_view"]

ALLOWED_METHODS = ("PUT", "OPTIONS")
OFFSET_HEADER = "Upload-Offset"
_RANGE = re.compile(r"^bytes\s+(?:(\d{1,19})-(\d{1,19})|\*)/(\d{1,19}|\*)$")


class _Busy(Exception):
    """Another request holds the ticket's row."""


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


def _locked_ticket(ticket_id: uuid.UUID) -> UploadTicket | None:
    try:
        return (
            UploadTicket.objects.select_for_update(nowait=True)
            .filter(pk=ticket_id, destination=UploadDestination.APP)
            .first()
        )
    except OperationalError as exc:
        if is_lock_conflict(exc):
            raise _Busy from exc
        raise


def _put(request: HttpRequest, ticket_id: uuid.UUID, length: int) -> JsonResponse:
    start, total = _content_range(request, length)
    with transaction.atomic():
        ticket = _locked_ticket(ticket_id)
        if ticket is None:
            return _answer(410, detail=gettext("This upload ticket is gone; ask for a new one."))
        if ticket.used_at is not None or ticket.is_expired:
            return _answer(
                410, detail=gettext("This upload ticket is used or expired; ask for a new one.")
            )
        destination = AppDestination()
        if total is not None and total != ticket.size:
            if total > ticket.size:
                destination.drop_staged(ticket)
                ticket.save(update_fields=["received_bytes"])
                return _answer(
                    413,
                    destination.progress(ticket),
                    gettext("This upload is limited to the %(size)d bytes its ticket declared.")
                    % {"size": ticket.size},
                )
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
            progress = destination.receive(ticket, request.read, length=length, start=start)
            if progress.complete:
                status = 201
        except UploadConflictError as exc:
            return _answer(409, destination.progress(ticket), str(exc))
        except UploadTooLargeError as exc:
            status, detail = 413, str(exc)
        except UploadInterruptedError:
            status = 400
            detail = gettext("The body ended before Content-Length bytes; resume from here.")
        ticket.save(update_fields=["received_bytes", "storage_name"])
        return _answer(status, destination.progress(ticket), detail)


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
