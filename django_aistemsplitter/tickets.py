"""Direct uploads: tickets that let a client send audio straight to where it is kept.

Two calls make a split of a file that never passes through a Django worker
whole (``POST /splits/uploads/`` then ``POST /splits/`` with ``upload=<id>``; the
admin's add form does the same with a script):

1. :func:`open_ticket` checks what it can before any byte moves (the size the
   client declares against ``MAX_UPLOAD_BYTES``, the backend, how many tickets
   the user holds) and asks the chosen destination
   (:mod:`django_aistemsplitter.destinations`) where the bytes go;
2. :func:`redeem` takes the ticket once, for its owner, before it expires; reads
   what arrived through the destination (ranges, not the whole file) and hands
   it to the one validation path every upload takes
   (:func:`~django_aistemsplitter.validation.validate_split_request`); then
   creates the job pointing at the uploaded audio, without copying it.

A ticket that is never used, or whose audio is refused, leaves nothing behind:
refused audio is deleted at once, and :func:`purge_expired` (run with
reconciliation) deletes what unused tickets uploaded once they have expired.
"""

from __future__ import annotations

import logging
import mimetypes
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import OperationalError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_aistemsplitter.backends import get_backend
from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.destinations import (
    Destination,
    NotUploadedError,
    UploadOffer,
    choose,
    get_destination,
)
from django_aistemsplitter.exceptions import AiStemSplitterError, ConfigurationError
from django_aistemsplitter.filestreams import read_failure
from django_aistemsplitter.models import SplitJob, UploadTicket
from django_aistemsplitter.services import create_split
from django_aistemsplitter.validation import (
    InvalidSplitRequest,
    clean_filename,
    file_too_large,
    max_upload_bytes,
    validate_split_request,
)

logger = logging.getLogger(__name__)

__all__ = [
    "IssuedTicket",
    "UploadUnavailableError",
    "is_lock_conflict",
    "open_ticket",
    "purge_expired",
    "redeem",
    "ticket_ttl",
]

#: PostgreSQL's ``lock_not_available``: a ``NOWAIT`` lock another transaction holds.
LOCK_NOT_AVAILABLE = "55P03"


class UploadUnavailableError(AiStemSplitterError):
    """Where the upload goes could not be reached to prepare it (the service is down).

    Entry points answer 503: the request was fine and may be sent again.
    """


@dataclass(frozen=True)
class IssuedTicket:
    """A new ticket and how to send the bytes for it."""

    ticket: UploadTicket
    offer: UploadOffer

    def as_json(self) -> dict[str, Any]:
        """The answer of ``POST /splits/uploads/`` (and of the admin's ticket view).

        ``method`` ``PUT``: send the file as the body with ``headers``. ``POST``:
        a ``multipart/form-data`` body of ``fields`` (in order), then the file as
        the part named ``file_field``. Then create the split with ``upload=<id>``
        before ``expires_at``. ``max_bytes`` is the size declared: a larger file
        is refused by the destination.
        """
        return {
            "id": str(self.ticket.pk),
            "destination": self.ticket.destination,
            "url": self.offer.url,
            "method": self.offer.method,
            "headers": dict(self.offer.headers),
            "fields": dict(self.offer.fields),
            "file_field": self.offer.file_field,
            "expires_at": self.ticket.expires_at.isoformat(),
            "max_bytes": self.ticket.size,
        }


def ticket_ttl() -> timedelta:
    """``UPLOAD_TICKET_TTL``: how long a ticket may be used."""
    return timedelta(seconds=float(get_setting("UPLOAD_TICKET_TTL")))


def _content_type(filename: str, given: str) -> str:
    given = (given or "").strip()
    if given and len(given) <= 100 and "/" in given and given.isprintable():
        return given
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def open_ticket(
    *,
    owner: Any,
    filename: str,
    size: int,
    content_type: str = "",
    backend: str | None = None,
) -> IssuedTicket:
    """Issue a ticket for ``owner`` to upload ``size`` bytes called ``filename``.

    Raises :class:`~django_aistemsplitter.validation.InvalidSplitRequest` with
    ``field`` ``size`` (not a positive integer, or over ``MAX_UPLOAD_BYTES``:
    code ``too_large``), ``filename`` (empty) or ``None`` (the user holds
    ``MAX_OPEN_UPLOAD_TICKETS`` unused tickets already: code ``upload_limit``).
    The destination refuses more bytes than ``size``.
    """
    if getattr(owner, "pk", None) is None:
        raise InvalidSplitRequest(_("Sign in to upload audio."), code="upload_owner")
    name = clean_filename(filename or "")
    if not name:
        raise InvalidSplitRequest(_("Give the file's name."), code="bad_filename", field="filename")
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise InvalidSplitRequest(
            _("Give the file's size in bytes, a positive whole number."),
            code="bad_size",
            field="size",
        )
    if size > max_upload_bytes():
        error = file_too_large(size)
        error.field = "size"
        raise error
    backend_name = backend or str(get_setting("BACKEND"))
    splitter = get_backend(backend_name)
    now = timezone.now()
    most = int(get_setting("MAX_OPEN_UPLOAD_TICKETS"))
    open_count = UploadTicket.objects.filter(
        owner=owner, used_at__isnull=True, expires_at__gt=now
    ).count()
    if open_count >= most:
        raise InvalidSplitRequest(
            _(
                "You have %(count)d unused upload tickets; use them or let them expire "
                "before asking for another (MAX_OPEN_UPLOAD_TICKETS)."
            ),
            code="upload_limit",
            params={"count": open_count},
        )
    ticket = UploadTicket(
        id=uuid.uuid4(),
        owner=owner,
        destination=choose(splitter),
        backend=backend_name,
        filename=name,
        content_type=_content_type(name, content_type),
        size=size,
        expires_at=now + ticket_ttl(),
    )
    try:
        offer = get_destination(ticket.destination).prepare(ticket)
    except (InvalidSplitRequest, ConfigurationError):
        raise
    except AiStemSplitterError as exc:
        # The service did not answer the presign (down, 5xx, timeout): the user's
        # request was fine, so not a 400; the message never carries the service's.
        logger.warning("upload ticket not issued: %s failed: %r", ticket.destination, exc)
        raise UploadUnavailableError(
            _("Uploads cannot be prepared right now; try again in a minute.")
        ) from exc
    ticket.save(force_insert=True)
    logger.info(
        "upload ticket %s issued (%s, %d bytes) to user %s",
        ticket.pk,
        ticket.destination,
        size,
        owner.pk,
    )
    return IssuedTicket(ticket=ticket, offer=offer)


def _unknown() -> InvalidSplitRequest:
    # The same answer for "no such ticket" and "someone else's": ids are not probed.
    return InvalidSplitRequest(
        _("No such upload ticket; ask for a new one."), code="upload_unknown", field="upload"
    )


def _busy() -> InvalidSplitRequest:
    return InvalidSplitRequest(
        _(
            "The file is still being uploaded, or this upload is being used right now; "
            "try again once the upload has finished."
        ),
        code="upload_busy",
        field="upload",
    )


def is_lock_conflict(exc: OperationalError) -> bool:
    """Whether ``exc`` is a ``NOWAIT`` row lock refused because another transaction holds it."""
    cause = exc.__cause__
    code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    return code == LOCK_NOT_AVAILABLE


def _locked_ticket(ticket_id: Any, owner: Any) -> UploadTicket:
    try:
        key = uuid.UUID(str(ticket_id))
    except (TypeError, ValueError, AttributeError):
        raise _unknown() from None
    if getattr(owner, "pk", None) is None:
        raise _unknown()
    try:
        # NOWAIT: another request redeeming this ticket holds the row for a moment;
        # refused at once rather than waiting (the loser would find it used anyway).
        ticket = (
            UploadTicket.objects.select_for_update(nowait=True).filter(pk=key, owner=owner).first()
        )
    except OperationalError as exc:
        if not is_lock_conflict(exc):
            raise
        raise _busy() from exc
    if ticket is None:
        raise _unknown()
    if ticket.used_at is not None:
        raise InvalidSplitRequest(
            _("This upload was used for a split already; upload the file again."),
            code="upload_used",
            field="upload",
        )
    if ticket.is_expired:
        raise InvalidSplitRequest(
            _("This upload ticket has expired; ask for a new one and upload again."),
            code="upload_expired",
            field="upload",
        )
    if ticket.writing_until is not None and ticket.writing_until >= timezone.now():
        # The app's upload view holds a lease while a PUT writes (it takes it only
        # while the row is unlocked, so it cannot start now until we are done).
        raise _busy()
    return ticket


def _unreadable(ticket: UploadTicket, exc: BaseException) -> UploadUnavailableError:
    """The upload could not be read back (storage or service unreachable): a 503, the
    file kept, the ticket usable again once it answers."""
    logger.warning("upload of ticket %s could not be read back: %r", ticket.pk, exc)
    return UploadUnavailableError(
        _("The uploaded file cannot be read right now; try again in a minute.")
    )


def _discard(destination: Destination, ticket: UploadTicket) -> None:
    """Delete what ``ticket`` uploaded, and the ticket; a failure is logged and left to purge."""
    try:
        destination.discard(ticket)
    except Exception:
        logger.exception("could not discard the upload of ticket %s; purge retries", ticket.pk)
        return
    UploadTicket.objects.filter(pk=ticket.pk, used_at__isnull=True).delete()


def redeem(
    ticket_id: Any,
    *,
    owner: Any,
    stem_model: str | None = None,
    output_format: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> SplitJob:
    """Create the split of what ``owner`` uploaded with ticket ``ticket_id``.

    The ticket is locked for the check, so two requests racing with one ticket
    make one job. Raises :class:`~django_aistemsplitter.validation.InvalidSplitRequest`:
    ``field="upload"`` with code ``upload_unknown`` (no such ticket, or not the
    owner's), ``upload_used``, ``upload_expired``, ``upload_missing`` (nothing,
    or less than declared, arrived) or ``upload_busy`` (a ``PUT`` holds the
    ticket's lease: its upload is still being written; or another request is
    redeeming it); or any refusal of the validation path.
    :class:`UploadUnavailableError` when the upload cannot be read back (the
    storage or the service does not answer): the file is kept. Audio that is refused
    is deleted with its ticket; a refused model or format leaves the ticket usable.
    """
    refused: InvalidSplitRequest | None = None
    with transaction.atomic():
        ticket = _locked_ticket(ticket_id, owner)
        destination = get_destination(ticket.destination)
        try:
            audio = destination.open(ticket)
        except NotUploadedError as exc:
            raise InvalidSplitRequest(
                _("The file has not been uploaded (completely) yet: %(reason)s"),
                code="upload_missing",
                field="upload",
                params={"reason": str(exc)},
            ) from exc
        except (InvalidSplitRequest, ConfigurationError):
            raise
        except Exception as exc:  # botocore's errors share no base with OSError
            raise _unreadable(ticket, exc) from exc
        with audio:
            try:
                validated = validate_split_request(
                    audio,
                    stem_model=stem_model,
                    output_format=output_format,
                    backend=ticket.backend,
                )
            except Exception as exc:
                failure = read_failure(audio)
                if failure is not None:
                    # The storage failed mid-read (the decoder may have called the
                    # file "not audio"): it may be fine, so it is kept for a retry.
                    raise _unreadable(ticket, failure) from exc
                if not isinstance(exc, InvalidSplitRequest) or exc.field != "audio":
                    raise
                refused = exc
            else:
                job = create_split(
                    validated,
                    owner=owner,
                    metadata=metadata,
                    attach=lambda job: destination.attach(ticket, job),
                )
                ticket.used_at = timezone.now()
                ticket.job = job
                ticket.save(update_fields=["used_at", "job"])
                return job
    # The audio itself was refused: no use keeping it until the ticket expires.
    _discard(destination, ticket)
    assert refused is not None
    raise refused


def purge_expired(now: Any = None, *, limit: int = 500) -> dict[str, int]:
    """Delete unused tickets (and what they uploaded) that expired a ``ticket_ttl()`` ago.

    The grace period lets an upload that started just before expiry land before
    its file is deleted, so it cannot leave an orphan behind; one still writing
    (its lease live) is never purged. Used tickets are
    deleted once expired (their audio belongs to their job now). At most
    ``limit`` unused tickets per run; rows another run holds are skipped.
    """
    now = now or timezone.now()
    purged = 0
    # A ticket whose upload is still writing (a live lease) is left for a later run.
    idle = Q(writing_until__isnull=True) | Q(writing_until__lt=now)
    stale = UploadTicket.objects.filter(
        idle, used_at__isnull=True, expires_at__lte=now - ticket_ttl()
    )
    for pk in list(stale.values_list("pk", flat=True)[:limit]):
        with transaction.atomic():
            ticket = (
                UploadTicket.objects.select_for_update(skip_locked=True)
                .filter(idle, pk=pk, used_at__isnull=True)
                .first()
            )
            if ticket is None:
                continue
            try:
                get_destination(ticket.destination).discard(ticket)
            except Exception:
                logger.exception("could not discard the upload of ticket %s", ticket.pk)
                continue
            ticket.delete()
            purged += 1
    used, _counts = UploadTicket.objects.filter(used_at__isnull=False, expires_at__lte=now).delete()
    return {"upload_tickets_purged": purged, "upload_tickets_used_deleted": used}
