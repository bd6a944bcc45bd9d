"""Direct uploads to this site's own signed, streaming upload view (plain file storage).

Where there is no bucket to presign and no service to upload to, the bytes come
to the app itself, but never the way a form upload does (buffered whole, then
copied): the view (:mod:`django_aistemsplitter.upload_view`) reads the request
body in :data:`CHUNK_SIZE` pieces and appends them to a staging file beside the
audio's final place, so memory stays constant whatever the file's size, and
nothing reads ``request.body`` (``DATA_UPLOAD_MAX_MEMORY_SIZE`` does not apply).

* The URL carries a token made with :mod:`django.core.signing` (salted, signed
  ticket id, valid for the ticket's life); the ticket itself says how many bytes
  may come (its declared ``size``): more is refused and the staged part dropped.
* An interrupted upload resumes: ``Content-Range: bytes <start>-<end>/<size>``
  must start where the staged bytes end (:meth:`AppDestination.received`).
* When the last byte is in, the staging file is moved (a rename on the same
  file system, not a copy) to ``ticket.storage_name`` in ``STORAGE``; only then
  is the upload complete and :meth:`AppDestination.open` finds it.

The staged file's length is the truth about what arrived: one writer at a time
(the view holds a lease on the ticket, ``UploadTicket.writing_until``, and
:meth:`AppDestination.receive` asks it to ``keep`` before each write), and a
worker killed mid-upload leaves a prefix of what was sent, from which the
client resumes once its lease has expired.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.storage import Storage
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext

from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.destinations.base import (
    Destination,
    NotUploadedError,
    UploadedAudio,
    UploadOffer,
)
from django_aistemsplitter.destinations.names import direct_upload_name
from django_aistemsplitter.exceptions import ConfigurationError
from django_aistemsplitter.filestreams import open_stored
from django_aistemsplitter.storage import get_storage

if TYPE_CHECKING:
    from django_aistemsplitter.models import SplitJob, UploadTicket

logger = logging.getLogger(__name__)

__all__ = [
    "CHUNK_SIZE",
    "TOKEN_SALT",
    "URL_NAME",
    "AppDestination",
    "Progress",
    "UploadConflictError",
    "UploadInterruptedError",
    "UploadTooLargeError",
    "token_matches",
    "upload_token",
]

#: Bytes read from the request and written to the staging file at a time.
CHUNK_SIZE = 256 * 1024
#: The signing salt of upload tokens: a token signed for anything else never fits.
TOKEN_SALT = "django_aistemsplitter.destinations.app.upload"  # noqa: S105 - a salt, not a secret
#: The view's URL name (``django_aistemsplitter.urls``).
URL_NAME = "aistemsplitter:direct-upload"
#: Suffix of the staging file beside the final name.
STAGING_SUFFIX = ".part"


def upload_token(ticket: UploadTicket) -> str:
    """The token of ``ticket``'s upload URL: its id, signed with :data:`TOKEN_SALT`.

    Signed, not stored: the view checks it without a query, and a token for one
    ticket cannot open another. It is valid for ``UPLOAD_TICKET_TTL`` from now,
    the ticket's life (the ticket's own expiry is checked as well).
    """
    return signing.dumps(str(ticket.pk), salt=TOKEN_SALT)


def token_matches(token: str, ticket_id: uuid.UUID | str) -> bool:
    """Whether ``token`` was signed for ``ticket_id`` and has not outlived the ticket."""
    if not token or not isinstance(token, str):
        return False
    try:
        value = signing.loads(
            token,
            salt=TOKEN_SALT,
            max_age=timedelta(seconds=float(get_setting("UPLOAD_TICKET_TTL"))),
        )
    except signing.BadSignature:  # SignatureExpired is one
        return False
    return isinstance(value, str) and value == str(ticket_id)


@dataclass(frozen=True)
class Progress:
    """Where an upload stands: bytes received, and whether the file is in storage."""

    received: int
    complete: bool


class UploadConflictError(Exception):
    """The request does not continue the upload where it stands (``offset`` bytes in)."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class UploadTooLargeError(Exception):
    """More bytes than the ticket declared; what was staged has been dropped."""


class UploadInterruptedError(Exception):
    """The body ended before its ``Content-Length``; ``received`` bytes are kept for a resume."""

    def __init__(self, received: int) -> None:
        super().__init__(f"the body ended after {received} bytes")
        self.received = received


def _local_path(storage: Storage, name: str) -> str | None:
    """The file system path of ``name`` in ``storage``, or None when it has none."""
    try:
        return storage.path(name)
    except NotImplementedError:
        return None


def _staging_root() -> Path:
    """Where uploads to a storage without paths are staged (shared by the site's processes)."""
    base = getattr(settings, "FILE_UPLOAD_TEMP_DIR", None) or tempfile.gettempdir()
    return Path(base) / "aistemsplitter-direct-uploads"


class AppDestination(Destination):
    """This site's upload view, for storages that are neither S3 nor the service's."""

    name = "app"

    # --- the four verbs ----------------------------------------------------------

    def prepare(self, ticket: UploadTicket) -> UploadOffer:
        # <UPLOAD_TO>/direct/<ticket id>/<name>: one folder per ticket, so the name
        # is free and the job keeps it as it is.
        ticket.storage_name = direct_upload_name(ticket)
        try:
            path = reverse(URL_NAME, kwargs={"ticket_id": ticket.pk})
        except NoReverseMatch:
            raise ConfigurationError(
                "Direct uploads to the app need its URLs: add "
                'path("aistemsplitter/", include("django_aistemsplitter.urls")) to your '
                "URLconf, or set AISTEMSPLITTER['DIRECT_UPLOAD'] to 's3' or 'hosted'."
            ) from None
        return UploadOffer(
            url=f"{path}?token={upload_token(ticket)}",
            method="PUT",
            headers={"Content-Type": ticket.content_type},
        )

    def open(self, ticket: UploadTicket) -> UploadedAudio:
        if not ticket.storage_name or not self.is_stored(ticket):
            raise NotUploadedError(
                gettext("%(received)d of %(size)d bytes have arrived")
                % {"received": self.received(ticket), "size": ticket.size}
            )
        handle, size = open_stored(SimpleNamespace(name=ticket.storage_name, storage=get_storage()))
        if size != ticket.size:  # not through the view: refuse, never guess
            handle.close()
            raise NotUploadedError(
                gettext("the stored file has %(received)d bytes, %(size)d were declared")
                % {"received": size, "size": ticket.size}
            )
        return UploadedAudio(handle, name=ticket.filename, size=size)

    def attach(self, ticket: UploadTicket, job: SplitJob) -> None:
        # The moved file becomes the job's audio as it is: no copy.
        job.audio.name = ticket.storage_name

    def discard(self, ticket: UploadTicket) -> None:
        """Delete the stored file, the staged part and the ticket's (then empty) folder."""
        self.drop_staged(ticket)
        if not ticket.storage_name:
            return
        storage = get_storage()
        storage.delete(ticket.storage_name)
        path = _local_path(storage, ticket.storage_name)
        if path is not None:
            with contextlib.suppress(OSError):  # not empty, or gone: nothing of ours
                os.rmdir(os.path.dirname(path))

    # --- what the upload view calls, holding the ticket's lease ----------------------

    def staging_path(self, ticket: UploadTicket) -> Path:
        """Where the bytes of an unfinished upload go.

        Beside the final name when the storage has paths, so completing is a
        rename on one file system; else in a temporary folder of this host.
        """
        path = _local_path(get_storage(), ticket.storage_name)
        if path is not None:
            return Path(path + STAGING_SUFFIX)
        return _staging_root() / f"{ticket.pk}{STAGING_SUFFIX}"

    def is_stored(self, ticket: UploadTicket) -> bool:
        """Whether the complete upload has been moved to ``ticket.storage_name``."""
        storage = get_storage()
        path = _local_path(storage, ticket.storage_name)
        if path is not None:
            return os.path.isfile(path)
        return bool(storage.exists(ticket.storage_name))

    def received(self, ticket: UploadTicket) -> int:
        """Bytes received so far: ``size`` once stored, else the staged file's length."""
        if self.is_stored(ticket):
            return int(ticket.size)
        try:
            return min(self.staging_path(ticket).stat().st_size, int(ticket.size))
        except FileNotFoundError:
            return 0

    def progress(self, ticket: UploadTicket) -> Progress:
        received = self.received(ticket)
        return Progress(received=received, complete=received >= ticket.size)

    def drop_staged(self, ticket: UploadTicket) -> None:
        """Delete the staged part of an unfinished upload (safe to repeat)."""
        self.staging_path(ticket).unlink(missing_ok=True)
        ticket.received_bytes = self.received(ticket)

    def receive(
        self,
        ticket: UploadTicket,
        read: Callable[[int], bytes],
        *,
        length: int,
        start: int | None = None,
        keep: Callable[[], None] | None = None,
    ) -> Progress:
        """Append ``length`` bytes from ``read`` at ``start`` (None: the whole file anew).

        ``read(n)`` returns at most ``n`` bytes, ``b""`` at the end of the body.
        ``keep()`` is called after each read, before the piece is written, and
        before the file is moved into storage: the caller's lease renews itself
        there, or raises (the exception propagates, nothing more is written) when
        it ran out while the client was slow to send and another writer has the
        ticket now.
        Raises :class:`UploadConflictError` when ``start`` is not where the upload
        stands (or it is complete already), :class:`UploadTooLargeError` (after
        dropping the staged part) when the bytes would pass the ticket's ``size``,
        :class:`UploadInterruptedError` when the body ends early (the bytes that
        came are kept). Sets ``ticket.received_bytes``; the caller saves it.
        """
        size = int(ticket.size)
        current = self.received(ticket)
        if current >= size:
            raise UploadConflictError(gettext("The upload is complete already."), size)
        if start is None:
            start = 0  # a plain PUT sends the whole file: it replaces a partial upload
        elif start != current:
            raise UploadConflictError(
                gettext("The upload stands at byte %(offset)d; continue from there.")
                % {"offset": current},
                current,
            )
        if start + length > size:
            self.drop_staged(ticket)
            raise UploadTooLargeError(
                gettext("This upload is limited to the %(size)d bytes its ticket declared.")
                % {"size": size}
            )
        staged = self.staging_path(ticket)
        staged.parent.mkdir(parents=True, exist_ok=True)
        remaining = length
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT, 0o666)
        with os.fdopen(fd, "wb") as out:
            out.truncate(start)
            out.seek(start)
            try:
                while remaining:
                    chunk = read(min(CHUNK_SIZE, remaining))
                    if not chunk:
                        break
                    chunk = chunk[:remaining]
                    if keep is not None:
                        keep()
                    out.write(chunk)
                    remaining -= len(chunk)
            except OSError:  # the client went away (Django's UnreadablePostError is one)
                logger.info("upload of ticket %s interrupted", ticket.pk)
            out.flush()
            os.fsync(out.fileno())
        received = start + length - remaining
        ticket.received_bytes = received
        if remaining:
            raise UploadInterruptedError(received)
        if received == size:
            if keep is not None:
                keep()
            self._store(ticket, staged)
        return Progress(received=received, complete=received == size)

    def _store(self, ticket: UploadTicket, staged: Path) -> None:
        """Move the complete staged file to ``ticket.storage_name`` in ``STORAGE``."""
        storage = get_storage()
        path = _local_path(storage, ticket.storage_name)
        if path is not None:
            os.replace(staged, path)  # the same folder: a rename, never a copy
            mode: Any = getattr(storage, "file_permissions_mode", None)
            if mode is not None:
                os.chmod(path, mode)
        else:
            # A storage without paths (neither S3 nor the file system): one streamed copy.
            with staged.open("rb") as handle:
                saved = storage.save(ticket.storage_name, File(handle, name=ticket.filename))
            ticket.storage_name = saved
            staged.unlink(missing_ok=True)
        logger.info("upload of ticket %s complete (%d bytes)", ticket.pk, ticket.size)
