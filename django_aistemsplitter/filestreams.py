"""Reading a stored file at constant memory, whatever the storage holds it.

``storage.open()`` streams on the file system, but django-storages' S3 file
downloads the whole object into memory on its first read: a 300 MB stem served
or drawn that way costs 300 MB of the process. :func:`open_stored` returns a
seekable binary reader instead, which for an S3 object asks for byte ranges as it
is read (:class:`RangeReader`: growing windows while reading forward, a new one
after a seek), so serving a range or computing a waveform holds one buffer,
never the object.
"""

from __future__ import annotations

import io
from typing import IO, Any

from django.db.models.fields.files import FieldFile

__all__ = [
    "BUFFER_SIZE",
    "FIRST_WINDOW",
    "HEAD_KEPT",
    "LAST_WINDOW",
    "S3_MODULE",
    "RangeReader",
    "RangedObjectReader",
    "is_s3_storage",
    "open_stored",
    "read_failure",
]

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


#: First and largest span (bytes) one ranged ``GET`` asks for. Reading forward,
#: each next request asks for twice the last: a probe of a header costs one small
#: request, streaming a whole stem a handful. A bounded range also spares servers
#: (moto, some S3-compatible stores) that prepare all of an open-ended one.
FIRST_WINDOW = 1024**2
LAST_WINDOW = 64 * 1024**2

#: The file's first bytes a reader keeps once read. A decoder reads a header, seeks
#: about in it and comes back (libsndfile reads a WAV's first bytes, then seeks to
#: its data at byte 44): without these, every return to the start is another
#: ranged ``GET``, which on a slow store costs as much as the read itself.
HEAD_KEPT = 64 * 1024


class RangeReader(io.RawIOBase):
    """A seekable reader of ``size`` remote bytes, fetched in ranges, one at a time.

    Reading forward consumes one streamed response for a window of the file
    (``Range: bytes=<pos>-<end>``), then asks for the next, twice as large, up to
    :data:`LAST_WINDOW`; a seek elsewhere drops the response and starts again
    from :data:`FIRST_WINDOW`, so never more than one read is held. The file's
    first :data:`HEAD_KEPT` bytes are kept once read, so a decoder going back to
    its header costs no request. Subclasses say how a range is fetched
    (:meth:`_fetch`) and released (:meth:`_release`).
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size
        #: The first error met while fetching, kept: a decoder that reads through
        #: this reader may turn it into "not audio", and callers must not take a
        #: storage outage for a bad file.
        self.failure: BaseException | None = None
        self._pos = 0
        self._body: Any = None
        self._body_pos = -1
        self._body_end = -1
        self._window = FIRST_WINDOW
        self._head = bytearray()

    @property
    def size(self) -> int:
        return self._size

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
        try:
            return self._readinto(buffer)
        except Exception as exc:
            self.failure = self.failure or exc
            raise

    def _readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self._size - self._pos)
        if wanted <= 0:
            return 0
        if self._pos < len(self._head):
            count = min(wanted, len(self._head) - self._pos)
            buffer[:count] = self._head[self._pos : self._pos + count]
            self._pos += count
            return count
        if self._body is not None and self._body_pos == self._body_end == self._pos:
            self._window = min(self._window * 2, LAST_WINDOW)  # reading on: a larger range
            self._drop_body()
        elif self._body is None or self._body_pos != self._pos:
            self._window = FIRST_WINDOW
            self._drop_body()
        if self._body is None:
            end = min(self._size, self._pos + self._window)
            self._body = self._fetch(self._pos, end - 1)
            self._body_pos, self._body_end = self._pos, end
        data = self._read(self._body, min(wanted, self._body_end - self._pos))
        count = len(data)
        if self._pos == len(self._head) < HEAD_KEPT:
            self._head += data[: HEAD_KEPT - self._pos]
        buffer[:count] = data
        self._pos += count
        self._body_pos += count
        return count

    def _fetch(self, first: int, last: int) -> Any:
        """A streamed body of bytes ``first`` to ``last`` (inclusive)."""
        raise NotImplementedError

    def _read(self, body: Any, count: int) -> bytes:
        """Up to ``count`` bytes of ``body``; at least one unless the body ended early."""
        data = body.read(count)
        if not data:
            raise OSError("the storage ended the file early")
        return bytes(data)

    def _release(self, body: Any) -> None:
        body.close()

    def _drop_body(self) -> None:
        if self._body is not None:
            body, self._body = self._body, None
            self._release(body)
        self._body_pos = self._body_end = -1

    def close(self) -> None:
        if not self.closed:
            self._drop_body()
        super().close()


class RangedObjectReader(RangeReader):
    """A :class:`RangeReader` of a boto3 ``s3.Object``.

    ``extra`` goes with every ``GET`` (SSE-C keys, for instance).
    """

    def __init__(self, obj: Any, size: int, **extra: Any) -> None:
        super().__init__(size)
        self._obj = obj
        self._extra = extra

    def _fetch(self, first: int, last: int) -> Any:
        return self._obj.get(Range=f"bytes={first}-{last}", **self._extra)["Body"]


def read_failure(file: Any) -> BaseException | None:
    """The error a :class:`RangeReader` under ``file`` (a ``File``, a buffered reader)
    met while fetching, or None: whether a failed read was the storage's fault."""
    for _ in range(4):
        if isinstance(file, RangeReader):
            return file.failure
        file = getattr(file, "file", None) or getattr(file, "raw", None)
        if file is None:
            return None
    return None


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
