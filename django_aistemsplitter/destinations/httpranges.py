"""Reading a file at a URL as a seekable binary file, through HTTP ``Range`` requests.

The hosted destination validates an upload where it landed, on the service's
storage: the decoder reads a header, seeks to the end for the length, maybe
reads a frame near the end. Downloading 200 MB for that would cost the time and
(in a buffer) the memory direct uploads exist to save, so :class:`HttpRangeReader`
asks for the bytes from where the reader is, the way a stored S3 object is read
(:class:`~django_aistemsplitter.filestreams.RangeReader`: growing windows while
reading forward, a new one after a seek, never more than one buffer held). The size comes
from :func:`open_url`'s probe (``Range: bytes=0-0``), which transfers one byte.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import IO, Any

import httpx

from django_aistemsplitter.client._transport import BulkReadTransport
from django_aistemsplitter.filestreams import RangeReader

__all__ = [
    "BUFFER_SIZE",
    "HttpRangeReader",
    "RemoteFileError",
    "RemoteFileMissingError",
    "RemoteFileRefusedError",
    "open_url",
]

#: Bytes asked of the server per read, and the buffer of the reader :func:`open_url` returns.
BUFFER_SIZE = 256 * 1024

#: Times a read whose connection broke is tried again (from the same position).
READ_ATTEMPTS = 3

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*$", re.IGNORECASE)
#: Byte ranges are of the stored bytes, never of a compressed transfer of them.
_IDENTITY = {"Accept-Encoding": "identity"}


class RemoteFileError(OSError):
    """The URL could not be read (a server error, a broken connection, a bad answer).

    The message names the status or the error's type, never the URL: a signed
    URL is a credential.
    """


class RemoteFileMissingError(RemoteFileError):
    """404 or 410: there is nothing at the URL (yet)."""


class RemoteFileRefusedError(RemoteFileError):
    """401 or 403: the URL is not (or no longer) allowed, e.g. its signature expired."""


def _status_error(response: httpx.Response) -> RemoteFileError:
    status = response.status_code
    if status in (404, 410):
        return RemoteFileMissingError(f"HTTP {status}: nothing is there")
    if status in (401, 403):
        return RemoteFileRefusedError(f"HTTP {status}: reading it was refused")
    return RemoteFileError(f"HTTP {status}")


def _total_size(response: httpx.Response) -> int:
    """The whole file's size from a 206/416 ``Content-Range``, or a 200's ``Content-Length``."""
    if response.status_code == 200:
        length = response.headers.get("Content-Length", "")
        if length.isdigit():
            return int(length)
        raise RemoteFileError("the server said neither the range nor the length of the file")
    found = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    if found is None or found.group(3) == "*":
        raise RemoteFileError("the server answered a range without the file's size")
    return int(found.group(3))


def _range_start(response: httpx.Response) -> int | None:
    found = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    return int(found.group(1)) if found is not None and found.group(1) is not None else None


class _RangeBody:
    """The bytes of one ranged answer, from the position asked for (the start skipped
    when a server ignored ``Range`` and sent the whole file)."""

    def __init__(self, response: httpx.Response, skip: int) -> None:
        self._response = response
        self._chunks: Iterator[bytes] = response.iter_raw(BUFFER_SIZE)
        self._pending = b""
        while skip > 0:
            chunk = self._next()
            if len(chunk) > skip:
                self._pending = chunk[skip:]
            skip -= len(chunk)

    def _next(self) -> bytes:
        chunk = next(self._chunks, None)
        if chunk is None:
            raise RemoteFileError("the server ended the file early")
        return chunk

    def read(self, count: int) -> bytes:
        if not self._pending:
            self._pending = self._next()
        data, self._pending = self._pending[:count], self._pending[count:]
        return data

    def close(self) -> None:
        self._response.close()


class HttpRangeReader(RangeReader):
    """A :class:`~django_aistemsplitter.filestreams.RangeReader` of ``url`` (``size`` bytes).

    A server that ignores ``Range`` (200) still works: the bytes before the
    position are read and dropped, slowly but correctly. A connection that
    breaks mid-read is reopened at the same position (:data:`READ_ATTEMPTS`).
    ``client`` is closed with the reader when ``owns_client`` is true.
    """

    def __init__(
        self, client: httpx.Client, url: str, size: int, *, owns_client: bool = False
    ) -> None:
        super().__init__(size)
        self._client = client
        self._url = url
        self._owns_client = owns_client

    def _readinto(self, buffer: Any) -> int:
        for attempt in range(READ_ATTEMPTS):
            try:
                return super()._readinto(buffer)
            except httpx.TransportError as exc:
                self._drop_body()
                if attempt == READ_ATTEMPTS - 1:
                    raise RemoteFileError(f"reading failed: {type(exc).__name__}") from None
            except httpx.HTTPError as exc:
                self._drop_body()
                raise RemoteFileError(f"reading failed: {type(exc).__name__}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _fetch(self, first: int, last: int) -> _RangeBody:
        request = self._client.build_request(
            "GET", self._url, headers={**_IDENTITY, "Range": f"bytes={first}-{last}"}
        )
        response = self._client.send(request, stream=True)
        if response.status_code not in (200, 206):
            response.close()
            raise _status_error(response)
        start = _range_start(response) if response.status_code == 206 else 0
        if start is None or start > first:
            response.close()
            raise RemoteFileError("the server answered another range than the one asked for")
        try:
            return _RangeBody(response, first - start)
        except BaseException:
            response.close()
            raise

    def close(self) -> None:
        if not self.closed:
            super().close()
            if self._owns_client:
                self._client.close()


def open_url(url: str, *, timeout: float = 30.0) -> tuple[IO[bytes], int]:
    """A buffered, seekable reader of ``url`` and the file's size; the caller closes it.

    The size is asked with ``Range: bytes=0-0`` (one byte comes back; a server
    without ranges answers 200 and its ``Content-Length`` is read, not its body).
    Redirects are followed (a service may hand out its storage's URL). Raises
    :class:`RemoteFileMissingError` (404/410), :class:`RemoteFileRefusedError`
    (401/403) or :class:`RemoteFileError` (anything else, a transport error too).
    """
    client = httpx.Client(timeout=timeout, follow_redirects=True, transport=BulkReadTransport())
    try:
        try:
            request = client.build_request("GET", url, headers={**_IDENTITY, "Range": "bytes=0-0"})
            response = client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise RemoteFileError(f"the request failed: {type(exc).__name__}") from None
        try:
            # 416 to "bytes=0-0": there is nothing to range over, the file is empty.
            if response.status_code not in (200, 206, 416):
                raise _status_error(response)
            size = _total_size(response)
        finally:
            response.close()
        reader = HttpRangeReader(client, url, size, owns_client=True)
    except BaseException:
        client.close()
        raise
    return io.BufferedReader(reader, buffer_size=BUFFER_SIZE), size
