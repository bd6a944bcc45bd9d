"""Reading a stored file at constant memory, whatever the storage holds it.

``storage.open()`` streams on the file system, but django-storages' S3 file
downloads the whole object into memory on its first read: a 300 MB stem served
or drawn that way costs 300 MB of the process. :func:`open_stored` returns a
seekable binary reader instead, which for an S3 object asks for byte ranges as it
is read (one streamed ``GET`` while reading forward, a new one after a seek), so
serving a range or computing a waveform holds one buffer, never the object.
"""

from __future__ import annotations

import io
from typing import IO, Any

from django.db.models.fields.files import FieldFile

__all__ = ["BUFFER_SIZE", "S3_MODULE", "RangedObjectReader", "is_s3_storage", "open_stored"]

#: Bytes read from storage at a time.
BUFFER_SIZE = 256 * 1024

#: Where django-storages keeps its S3 backend (``storages.backends.s3`` and ``s3boto3``).
S3_MODULE = "storages.backends.s3"


def is_s3_storage(storage: Any) -> bool:
    """Whether ``storage`` is django-storages' S3 backend or a subclass of it.

    Told by the class's module rather than ``isinstance``, so django-storages
    (an optional dependency) is never imported to ask.
    """
    return any(cls.__module__.startswith(S3_MODULE) for cls in type(storage).__mro__)


class RangedObjectReader(io.RawIOBase):
    """A seekable reader of a boto3 ``s3.Object`` that never holds more than one read.

    Reading forward consumes one streamed response (``Range: bytes=<pos>-``);
    seeking elsewhere drops it, and the next read opens another at the new
    position. ``extra`` goes with every ``GET`` (SSE-C keys, for instance).
    """

    def __init__(self, obj: Any, size: int, **extra: Any) -> None:
        super().__init__()
        self._obj = obj
        self._size = size
        self._extra = extra
        self._pos = 0
        self._body: Any = None
        self._body_pos = -1

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._size or not len(buffer):
            return 0
        if self._body is None or self._body_pos != self._pos:
            self._drop_body()
            response = self._obj.get(Range=f"bytes={self._pos}-", **self._extra)
            self._body, self._body_pos = response["Body"], self._pos
        data = self._body.read(len(buffer))
        count = len(data)
        buffer[:count] = data
        self._pos += count
        self._body_pos += count
        return count

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()


def _download_parameters(storage: Any, name: str) -> dict[str, Any]:
    """The object parameters a ``GET`` must repeat (SSE-C keys), as django-storages sends them."""
    get_parameters = getattr(storage, "get_object_parameters", None)
    if not callable(get_parameters):
        return {}
    return {k: v for k, v in get_parameters(name).items() if k.startswith("SSECustomer")}


def open_stored(field_file: FieldFile | Any) -> tuple[IO[bytes], int]:
    """A fresh binary reader of ``field_file`` and its size in bytes; the caller closes it.

    Raises what the storage raises for a missing file (``OSError`` on the file
    system, botocore's ``ClientError`` on S3, which callers treat alike).
    """
    name = str(field_file.name)
    handle = field_file.storage.open(name, "rb")
    obj = getattr(handle, "obj", None)
    if obj is not None and callable(getattr(obj, "get", None)):
        # django-storages' S3 file: it loaded the object's metadata on open and
        # has read nothing yet; read through ranges rather than its download.
        size = int(obj.content_length)
        handle.close()
        extra = _download_parameters(field_file.storage, name)
        reader = RangedObjectReader(obj, size, **extra)
        return io.BufferedReader(reader, buffer_size=BUFFER_SIZE), size
    return handle, int(handle.size)
