"""The vocabulary between the sans-IO core and the two I/O drivers.

An operation is a generator. It yields *effects* — :class:`Request` ("send this,
give me the answer"), :class:`Sleep` ("wait this long") or, for iterators,
:class:`Emit` ("hand this item to the caller") — and receives the outcome back.
The sync driver performs effects with ``httpx.Client`` and ``time.sleep``, the
async one with ``httpx.AsyncClient`` and ``asyncio.sleep``; everything that
decides anything (retries, errors, pagination, polling) lives in the core, and
the download policy in ``downloads``, and is therefore written once.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Generic, Protocol, TypeVar, cast

import httpx

from django_aistemsplitter.client.exceptions import (
    APITimeoutError,
    IncompleteDownloadError,
    NetworkError,
)

T = TypeVar("T")

CHUNK_SIZE = 64 * 1024
#: The most of an error (or redirect) answer's body kept when a file was expected.
ERROR_BODY_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Emit:
    value: Any


@dataclass(frozen=True)
class Response:
    """An HTTP answer as the core sees it: the body is in memory unless sunk to a file."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes = b""
    #: Body bytes as they came off the wire (before any content decoding).
    bytes_received: int = 0
    #: Body bytes after content decoding, as written to the sink.
    bytes_decoded: int = 0

    @property
    def body_length(self) -> int:
        """The length that ``Content-Length`` describes: on the wire when encoded."""
        encoding = self.headers.get("content-encoding", "identity").strip().lower()
        return self.bytes_received if encoding not in ("", "identity") else self.bytes_decoded

    @property
    def ok(self) -> bool:
        return self.status_code < 400


@dataclass(frozen=True)
class TransportFailure:
    """The request did not produce an HTTP answer; ``error`` says why."""

    error: NetworkError

    @classmethod
    def from_httpx(cls, exc: httpx.HTTPError, what: str) -> TransportFailure:
        # httpx messages name the failure (refused, reset, timed out) but never
        # carry request headers, so nothing secret reaches the exception.
        detail = str(exc) or type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return cls(APITimeoutError(f"{what}: timed out ({detail})", code="TIMEOUT"))
        return cls(NetworkError(f"{what}: {detail}", code="NETWORK_ERROR"))


Reply = Response | TransportFailure


def _response(r: httpx.Response, content: bytes, decoded: int) -> Response:
    return Response(r.status_code, r.headers, content, r.num_bytes_downloaded, decoded)


class MemorySink:
    """Collects a (small, JSON) body in memory; over ``limit`` bytes, the transfer is cut."""

    def __init__(self, limit: int | None = None) -> None:
        self._buffer = bytearray()
        self._limit = limit

    def write(self, chunk: bytes) -> None:
        self._buffer += chunk
        if self._limit is not None and len(self._buffer) > self._limit:
            raise IncompleteDownloadError(f"error answer's body is over {self._limit} bytes")

    def response(self, r: httpx.Response) -> Response:
        return _response(r, bytes(self._buffer), len(self._buffer))


class StreamWatcher(Protocol):
    """Sees a file download as it streams, and may stop it by raising."""

    def begin(self, status_code: int, headers: Mapping[str, str]) -> None: ...
    def feed(self, chunk: bytes) -> None: ...


class FileSink:
    """Streams a successful body into ``path``; an error body still goes to memory.

    Reopening truncates, so a retried download never appends to a broken attempt.
    A ``watcher`` (the download policy's :class:`~.downloads.Transfer`) checks
    the answer and every chunk before it is written.
    """

    def __init__(self, path: Path, watcher: StreamWatcher | None = None) -> None:
        self.path = path
        self.watcher = watcher
        self._file: IO[bytes] | None = None
        self._written = 0

    def open_for(self, r: httpx.Response) -> FileSink | MemorySink:
        if r.status_code >= 300:
            return MemorySink(limit=ERROR_BODY_LIMIT)
        if self.watcher is not None:
            self.watcher.begin(r.status_code, r.headers)
        self.close()
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in response()/close()
        self._written = 0
        return self

    def write(self, chunk: bytes) -> None:
        assert self._file is not None
        if self.watcher is not None:
            self.watcher.feed(chunk)
        self._file.write(chunk)
        self._written += len(chunk)

    def response(self, r: httpx.Response) -> Response:
        self.close()
        return _response(r, b"", self._written)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class FileBody:
    """A request body read from a file in chunks, never whole, rewindable for retries."""

    def __init__(self, file: IO[bytes], *, length: int, owned: bool, name: str | None) -> None:
        self.file = file
        self.length = length
        self.name = name
        self._owned = owned
        self._start = file.tell()

    @classmethod
    def open(cls, source: str | os.PathLike[str] | IO[bytes]) -> FileBody:
        """Wrap a path (opened here, closed by :meth:`close`) or a seekable binary file."""
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            handle = open(path, "rb")  # noqa: SIM115 - closed by close()
            return cls(handle, length=os.fstat(handle.fileno()).st_size, owned=True, name=path.name)
        if not (hasattr(source, "read") and hasattr(source, "seek")):
            raise TypeError("upload_file() takes a path or a seekable binary file object")
        start = source.tell()
        try:
            size = os.fstat(source.fileno()).st_size
        except (AttributeError, OSError, io.UnsupportedOperation):
            size = source.seek(0, io.SEEK_END)
            source.seek(start)
        raw_name = getattr(source, "name", None)
        name = Path(raw_name).name if isinstance(raw_name, str) and raw_name else None
        return cls(source, length=max(0, size - start), owned=False, name=name)

    def chunks(self) -> Iterator[bytes]:
        """The body from its start: a retry re-sends exactly the same bytes."""
        self.file.seek(self._start)
        left = self.length
        while left > 0:
            chunk = self.file.read(min(CHUNK_SIZE, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk

    def close(self) -> None:
        if self._owned:
            self.file.close()


@dataclass(frozen=True)
class Request:
    """An HTTP request to perform. ``content`` is bytes; ``body`` streams from a file."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str | int] | None = None
    content: bytes | None = None
    body: FileBody | None = None
    sink: FileSink | None = None
    timeout: float | None = None

    @property
    def label(self) -> str:
        """Method and URL without the query: presigned URLs carry signatures there."""
        return f"{self.method} {self.url.split('?', 1)[0]}"

    def options(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.url,
            "headers": dict(self.headers),
            "params": self.params,
            "timeout": self.timeout,
        }

    def sink_for(self, r: httpx.Response) -> FileSink | MemorySink:
        return self.sink.open_for(r) if self.sink is not None else MemorySink()


Effect = Request | Sleep
#: An operation: yields effects, receives their outcomes, returns a result.
Op = Generator[Effect, Any, T]
#: An iteration: like an operation, and also yields ``Emit`` items for the caller.
Walk = Generator[Effect | Emit, Any, None]


class Stepper(Generic[T]):
    """Advances an operation for a driver and forwards the driver's failures into it.

    A failure while performing an effect (Ctrl-C, task cancellation, a full disk)
    is thrown into the generator at its ``yield``, so the core's ``finally``
    blocks run: a cancelled download removes its temporary file.
    """

    def __init__(self, gen: Generator[Any, Any, T]) -> None:
        self._gen = gen
        self._reply: Any = None
        self._error: BaseException | None = None
        self._result: Any = None

    @property
    def result(self) -> T:
        """What the operation returned (valid once :meth:`advance` gave ``None``)."""
        return cast(T, self._result)

    def advance(self) -> Effect | Emit | None:
        """The next effect to perform, or ``None`` once the operation has returned."""
        reply, error = self._reply, self._error
        self._reply = self._error = None
        try:
            return self._gen.throw(error) if error is not None else self._gen.send(reply)
        except StopIteration as stop:
            self._result = stop.value
            return None

    def reply(self, value: Any) -> None:
        self._reply = value

    @contextlib.contextmanager
    def performing(self) -> Iterator[None]:
        """Wrap the driver's I/O: an exception goes back into the operation."""
        try:
            yield
        except BaseException as exc:  # re-raised inside the operation
            self._error = exc

    def __iter__(self) -> Iterator[Effect | Emit]:
        """Effects until the operation returns; the operation is closed if abandoned."""
        try:
            while (effect := self.advance()) is not None:
                yield effect
        finally:
            self._gen.close()
