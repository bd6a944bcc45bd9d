"""Direct uploads to the S3 bucket of ``STORAGE`` (django-storages), with a presigned POST.

The browser posts the file to the bucket itself, so no byte passes through
Django: the presigned POST's policy pins the exact key, the content type and
the size (``content-length-range`` 1 to the size the ticket declared), and
expires with the ticket, so the URL cannot be used to store anything else,
anything larger, or later. The object lands where any source audio is kept
(:func:`~.names.direct_upload_name`, under the storage's ``location``), so the job
points at it (``job.audio.name``) without a copy, and it is read back for
validation through byte ranges (:class:`~django_aistemsplitter.filestreams.RangedObjectReader`),
never downloaded whole.

The bucket must allow the browser's origin to ``POST`` (its CORS rules: an
``AllowedMethods`` of ``POST`` for the site's origin); a script or ``curl``
needs nothing.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_aistemsplitter.destinations.base import (
    Destination,
    NotUploadedError,
    UploadedAudio,
    UploadOffer,
)
from django_aistemsplitter.destinations.names import direct_upload_name
from django_aistemsplitter.destinations.refusals import larger_than_declared
from django_aistemsplitter.exceptions import ConfigurationError
from django_aistemsplitter.filestreams import BUFFER_SIZE, RangedObjectReader, is_s3_storage
from django_aistemsplitter.storage import get_storage

if TYPE_CHECKING:
    from django_aistemsplitter.backends import BaseBackend
    from django_aistemsplitter.models import SplitJob, UploadTicket

logger = logging.getLogger(__name__)

__all__ = ["FILE_FIELD", "S3Destination"]

#: The form field of the file in the presigned POST (S3 requires it to come last).
FILE_FIELD = "file"

#: The storage's object parameters (``AWS_S3_OBJECT_PARAMETERS``, ``default_acl``)
#: that a presigned POST can set, as its form fields. Anything else is refused
#: rather than silently dropped (see :func:`_object_fields`).
POST_FIELDS = {
    "ACL": "acl",
    "CacheControl": "Cache-Control",
    "ContentDisposition": "Content-Disposition",
    "ContentEncoding": "Content-Encoding",
    "ContentLanguage": "Content-Language",
    "Expires": "Expires",
    "ServerSideEncryption": "x-amz-server-side-encryption",
    "SSEKMSKeyId": "x-amz-server-side-encryption-aws-kms-key-id",
    "BucketKeyEnabled": "x-amz-server-side-encryption-bucket-key-enabled",
    "StorageClass": "x-amz-storage-class",
}


def s3_storage() -> Any:
    """``STORAGE``, which must be django-storages' S3 backend for this destination."""
    storage = get_storage()
    if not is_s3_storage(storage):
        raise ConfigurationError(
            "AISTEMSPLITTER['DIRECT_UPLOAD'] is 's3', but AISTEMSPLITTER['STORAGE'] is "
            f"{type(storage).__name__}, not django-storages' S3 storage: a presigned POST "
            "needs a bucket. Use DIRECT_UPLOAD 'app' (or None to choose by configuration)."
        )
    return storage


def object_key(storage: Any, name: str) -> str:
    """The key in the bucket of the storage name ``name`` (the storage's ``location`` first)."""
    return str(storage._normalize_name(name))


def _object_fields(storage: Any, key: str, content_type: str) -> dict[str, str]:
    """The form fields that make the object what ``storage.save()`` would have made it."""
    params = dict(storage._get_write_parameters(key))
    params["ContentType"] = content_type
    fields: dict[str, str] = {"Content-Type": content_type}
    for name, value in params.items():
        if name == "ContentType":
            continue
        if name == "Metadata" and isinstance(value, dict):
            fields.update({f"x-amz-meta-{k}": str(v) for k, v in value.items()})
            continue
        field = POST_FIELDS.get(name)
        if field is None:
            # SSE-C would hand the customer key to the browser; others have no form field.
            raise ConfigurationError(
                f"the S3 storage's object parameter {name!r} cannot be set by a presigned "
                "POST; remove it from AWS_S3_OBJECT_PARAMETERS or use DIRECT_UPLOAD 'app'."
            )
        fields[field] = str(value).lower() if isinstance(value, bool) else str(value)
    return fields


def _is_missing(exc: Exception) -> bool:
    """botocore's ``ClientError`` for an object that is not there (a HEAD says only 404)."""
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in {"404", "NoSuchKey", "NotFound"} or status == 404


class S3Destination(Destination):
    """A presigned POST of one key and at most the declared size to the storage's bucket."""

    name = "s3"

    @classmethod
    def suits(cls, backend: BaseBackend) -> bool:
        """Whenever ``STORAGE`` is S3: the bytes then go to the bucket, whatever the backend."""
        return is_s3_storage(get_storage())

    def prepare(self, ticket: UploadTicket) -> UploadOffer:
        """Name the object and presign a POST to it that expires with the ticket."""
        storage = s3_storage()
        ticket.storage_name = direct_upload_name(ticket)
        key = object_key(storage, ticket.storage_name)
        fields = _object_fields(storage, key, ticket.content_type)
        conditions: list[Any] = [{name: value} for name, value in fields.items()]
        conditions.append(["content-length-range", 1, int(ticket.size)])
        seconds = max(1, int((ticket.expires_at - timezone.now()).total_seconds()))
        client = storage.connection.meta.client
        post = client.generate_presigned_post(
            Bucket=storage.bucket_name,
            Key=key,
            Fields=fields,
            Conditions=conditions,
            ExpiresIn=seconds,
        )
        return UploadOffer(
            url=str(post["url"]),
            method="POST",
            fields={str(k): str(v) for k, v in post["fields"].items()},
            file_field=FILE_FIELD,
        )

    def open(self, ticket: UploadTicket) -> UploadedAudio:
        """The object, read through ranges; its size from one ``HEAD``.

        An object larger than the ticket declared is deleted and refused
        (``too_large`` on ``upload``): the POST policy forbids it, but not every
        S3-compatible store enforces policies.
        """
        storage = s3_storage()
        if not ticket.storage_name:
            raise NotUploadedError(_("the ticket names no file"))
        obj = storage.bucket.Object(object_key(storage, ticket.storage_name))
        try:
            obj.load()  # HEAD: size and existence, no body
        except Exception as exc:
            if _is_missing(exc):
                raise NotUploadedError(_("nothing has arrived in storage")) from None
            raise
        size = int(obj.content_length)
        if size > ticket.size:
            # The policy forbids it; a store that does not enforce policies let it in.
            self.discard(ticket)
            raise larger_than_declared(ticket, size, deleted=True)
        reader = io.BufferedReader(RangedObjectReader(obj, size), buffer_size=BUFFER_SIZE)
        return UploadedAudio(reader, name=ticket.filename, size=size)

    def attach(self, ticket: UploadTicket, job: SplitJob) -> None:
        """The job's audio is the uploaded object itself: same storage, same name."""
        job.audio.name = ticket.storage_name

    def discard(self, ticket: UploadTicket) -> None:
        """Delete the object (deleting a missing one is no error on S3)."""
        if ticket.storage_name:
            get_storage().delete(ticket.storage_name)
            logger.info("deleted the upload of ticket %s", ticket.pk)
