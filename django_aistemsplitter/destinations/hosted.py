"""Direct uploads to the hosted service's own storage (its presigned upload).

With the hosted backend and no S3 bucket of ours, the natural place for the
audio is where the service would put it anyway: ``presign_upload`` reserves an
upload on the service, the browser ``PUT``\\ s the file to its ``uploadUrl``, and
the job is submitted with ``{"type": "uploaded_file", "uploadId": ...}``. No byte
passes through Django or our storage until the stems come back; the job keeps
no ``audio`` of its own.

Before the job exists the upload is validated like any other (size, decodable,
duration...) by reading it back through the service's ``audioUrl`` with HTTP
``Range`` requests (:mod:`.httpranges`): a header, a seek, perhaps a frame, never
the whole file.

The ticket stores the upload id and ``audioUrl`` (``remote_upload``), never the
``uploadUrl``: that one is a write credential and goes only to the client.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy as _

from django_aistemsplitter.backends import get_backend
from django_aistemsplitter.backends.hosted.backend import HostedBackend
from django_aistemsplitter.client.exceptions import PayloadTooLargeError
from django_aistemsplitter.client.types import Upload
from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.destinations.base import (
    Destination,
    NotUploadedError,
    UploadedAudio,
    UploadOffer,
)
from django_aistemsplitter.destinations.httpranges import (
    RemoteFileError,
    RemoteFileMissingError,
    RemoteFileRefusedError,
    open_url,
)
from django_aistemsplitter.destinations.refusals import larger_than_declared
from django_aistemsplitter.exceptions import ConfigurationError
from django_aistemsplitter.filestreams import is_s3_storage
from django_aistemsplitter.storage import get_storage
from django_aistemsplitter.validation import file_too_large

if TYPE_CHECKING:
    from django_aistemsplitter.backends import BaseBackend
    from django_aistemsplitter.models import SplitJob, UploadTicket

logger = logging.getLogger(__name__)

__all__ = ["UPLOADED_FILE", "HostedDestination"]

#: The ``input`` type of a split made from an upload on the service.
UPLOADED_FILE = "uploaded_file"


def _hosted_backend(name: str) -> HostedBackend:
    backend = get_backend(name or None)
    if not isinstance(backend, HostedBackend):
        raise ConfigurationError(
            f"AISTEMSPLITTER['DIRECT_UPLOAD'] is 'hosted', but the backend {name!r} does not "
            "send jobs to the hosted service: its uploads would never be used. Use "
            "DIRECT_UPLOAD 'app' or 's3' (or None to choose by configuration)."
        )
    return backend


def _remote_upload(upload: Upload) -> dict[str, str]:
    """What the ticket keeps of the service's upload: no ``uploadUrl`` (a credential)."""
    if not upload.upload_id or not upload.upload_url or not upload.audio_url:
        raise ConfigurationError(
            "the service's POST /audio/uploads answer lacks uploadId, uploadUrl or audioUrl; "
            "check BASE_URL points at the hosted API"
        )
    expires = upload.expires_at.isoformat() if upload.expires_at else ""
    return {"uploadId": upload.upload_id, "audioUrl": upload.audio_url, "expiresAt": expires}


class HostedDestination(Destination):
    """The service's presigned upload: a ``PUT`` of the file to its ``uploadUrl``."""

    name = "hosted"

    @classmethod
    def suits(cls, backend: BaseBackend) -> bool:
        """For jobs sent to the hosted service, unless ``STORAGE`` is a bucket of our own."""
        return isinstance(backend, HostedBackend) and not is_s3_storage(get_storage())

    def prepare(self, ticket: UploadTicket) -> UploadOffer:
        """Reserve the upload on the service; the ticket expires no later than it does.

        A size over the service's own limit is refused here, as ``too_large`` on
        ``size``, before the client sends anything.
        """
        backend = _hosted_backend(ticket.backend)
        try:
            upload = backend.client.presign_upload(
                ticket.filename, ticket.content_type, int(ticket.size)
            )
        except PayloadTooLargeError:
            error = file_too_large(int(ticket.size))
            error.field = "size"
            raise error from None
        ticket.remote_upload = _remote_upload(upload)
        if upload.expires_at is not None and upload.expires_at < ticket.expires_at:
            ticket.expires_at = upload.expires_at
        headers = {"Content-Type": ticket.content_type, **dict(upload.upload_headers)}
        return UploadOffer(url=upload.upload_url, method=upload.upload_method, headers=headers)

    def open(self, ticket: UploadTicket) -> UploadedAudio:
        """The upload read back from ``audioUrl`` through ranges; the size from a one-byte probe.

        Every failure to reach it is :class:`NotUploadedError` (the ticket stays
        usable, so the client may try again); its reason never holds the URL.
        """
        url = str((ticket.remote_upload or {}).get("audioUrl") or "")
        if not url:
            raise NotUploadedError(_("the service gave no address to read the upload from"))
        try:
            reader, size = open_url(url, timeout=float(get_setting("HTTP_TIMEOUT")))
        except RemoteFileMissingError:
            raise NotUploadedError(_("the service has received nothing")) from None
        except RemoteFileRefusedError:
            raise NotUploadedError(
                _("the service refused to read the upload back (its link may have expired)")
            ) from None
        except RemoteFileError as exc:
            logger.warning("could not read back the upload of ticket %s: %s", ticket.pk, exc)
            raise NotUploadedError(
                _("the service could not be asked for it just now; try again")
            ) from None
        if size > ticket.size:
            reader.close()
            raise larger_than_declared(ticket, size, deleted=False)
        return UploadedAudio(reader, name=ticket.filename, size=size)

    def attach(self, ticket: UploadTicket, job: SplitJob) -> None:
        """The job's input is the upload on the service; the job stores no audio.

        :meth:`HostedBackend.input_for` sends a preset ``remote_input`` as it is.
        """
        job.remote_input = {
            "type": UPLOADED_FILE,
            "uploadId": str(ticket.remote_upload["uploadId"]),
        }

    def discard(self, ticket: UploadTicket) -> None:
        """Nothing to delete on our side: the service has no call to delete an
        upload, and an unused one expires there on its own."""
