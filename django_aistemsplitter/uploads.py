"""Refuse an audio upload over ``MAX_UPLOAD_BYTES`` while it streams in, not after.

Django's own upload handlers keep a whole upload (in memory, or in a temporary
file once it is larger than ``FILE_UPLOAD_MAX_MEMORY_SIZE``) before a view sees
it, so a size check in the view comes after a 10 GB body has been received and
written to disk. :class:`UploadLimitHandler` runs first among a request's upload
handlers: it counts the file bytes as they arrive and, once the request's files
are over the limit, stops reading the body (``StopUpload``); the partial file the
next handler held is discarded. The view then answers with the usual
``too_large`` refusal of the validation path (:func:`refusal`), so a streamed
refusal reads like any other.

The handler must be installed before anything reads the body: the API's create
view installs it when the request comes in (DRF parses lazily), the admin's add
view before its CSRF check reads the form (see Django's "Modifying upload
handlers on the fly").
"""

from __future__ import annotations

from typing import Any

from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest

from django_aistemsplitter.validation import (
    FileTooLargeError,
    file_too_large,
    max_upload_bytes,
)

__all__ = ["UploadLimitHandler", "install", "refusal"]


class UploadLimitHandler(FileUploadHandler):
    """Stop reading a request's body once its files exceed ``limit`` bytes in all.

    ``received`` counts the file bytes this handler was given; ``refused`` is the
    ``too_large`` refusal once it stopped the upload, else ``None``. The handler
    stores nothing: it passes each chunk on to the handlers after it.
    """

    def __init__(self, request: HttpRequest | None = None, limit: int | None = None) -> None:
        super().__init__(request)
        self.limit = max_upload_bytes() if limit is None else int(limit)
        self.received = 0
        self.refused: FileTooLargeError | None = None

    def _stop(self, size: int | None) -> None:
        self.refused = file_too_large(size, self.limit)
        # connection_reset: do not read (and so not receive) the rest of the body.
        raise StopUpload(connection_reset=True)

    def new_file(self, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        # A part that states its own length (rare; browsers do not) is refused at once.
        if self.content_length is not None and self.received + self.content_length > self.limit:
            self._stop(self.content_length)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            self._stop(None)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler builds the UploadedFile


def install(request: HttpRequest, limit: int | None = None) -> UploadLimitHandler:
    """Put an :class:`UploadLimitHandler` first among ``request``'s upload handlers.

    Call it before the body is read (``request.POST``/``FILES``, DRF's
    ``request.data``); afterwards handlers can no longer change.
    """
    handler = UploadLimitHandler(request, limit)
    request.upload_handlers.insert(0, handler)
    return handler


def refusal(request: Any) -> FileTooLargeError | None:
    """The ``too_large`` refusal of ``request``'s upload, once its body was parsed.

    ``request`` is a Django ``HttpRequest`` or a DRF ``Request`` (which passes
    ``upload_handlers`` through).
    """
    for handler in getattr(request, "upload_handlers", ()):
        if isinstance(handler, UploadLimitHandler) and handler.refused is not None:
            return handler.refused
    return None
