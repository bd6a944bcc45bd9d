"""Reading request bodies safely: size caps, chunked encoding, streaming to disk.

An upload may be hundreds of megabytes, so it is copied to disk in chunks and
never held in memory; a JSON body is small and is read whole, but still capped.
Any body that breaks a cap raises 413 before more is read.
"""

from __future__ import annotations

import mmap
import re
import shutil
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Protocol

from django_aistemsplitter.sandbox.errors import ApiError

CHUNK = 64 * 1024
MAX_JSON_BYTES = 1024 * 1024
#: Room for a multipart body's boundaries and part headers on top of the file
#: itself: the declared ``contentLength`` is the file's size, not the form's.
MULTIPART_FRAMING_BYTES = 64 * 1024


class ByteStream(Protocol):
    """What a request body is read from (the handler's ``rfile``)."""

    def read(self, size: int | None = ..., /) -> bytes: ...

    def readline(self, size: int | None = ..., /) -> bytes: ...


def declared_length(headers: Message) -> int | None:
    raw = headers.get("Content-Length")
    if raw is None:
        return None
    if not raw.strip().isdigit():
        raise ApiError(400, "Content-Length is not a number")
    return int(raw)


def is_chunked(headers: Message) -> bool:
    return "chunked" in (headers.get("Transfer-Encoding") or "").lower()


def is_multipart(headers: Message) -> bool:
    return (headers.get("Content-Type") or "").lower().startswith("multipart/form-data")


def _fixed(stream: ByteStream, length: int) -> Iterator[bytes]:
    left = length
    while left > 0:
        data = stream.read(min(CHUNK, left))
        if not data:
            raise ApiError(400, "the request body ended before Content-Length bytes")
        left -= len(data)
        yield data


def _chunked(stream: ByteStream) -> Iterator[bytes]:
    while True:
        line = stream.readline(1024)
        try:
            size = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            raise ApiError(400, "malformed chunked body") from None
        if size == 0:
            while stream.readline(1024).strip():  # trailers
                pass
            return
        yield from _fixed(stream, size)
        stream.readline(8)  # CRLF after the chunk


def iter_body(stream: ByteStream, headers: Message, limit: int) -> Iterator[bytes]:
    """Yield the body in chunks; 413 as soon as it is known to exceed ``limit``."""
    if is_chunked(headers):
        chunks = _chunked(stream)
    else:
        length = declared_length(headers) or 0
        if length > limit:
            raise ApiError(
                413,
                f"the body is {length} bytes; the limit is {limit}",
                details={"limit": limit, "size": length},
            )
        chunks = _fixed(stream, length)
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise ApiError(
                413, f"the body exceeds the limit of {limit} bytes", details={"limit": limit}
            )
        yield chunk


def read_small_body(stream: ByteStream, headers: Message) -> bytes:
    return b"".join(iter_body(stream, headers, MAX_JSON_BYTES))


def save_body(stream: ByteStream, headers: Message, dest: Path, limit: int) -> int:
    """Stream the body into ``dest``; return its size. A partial file is removed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    try:
        with dest.open("wb") as out:
            for chunk in iter_body(stream, headers, limit):
                out.write(chunk)
                size += len(chunk)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return size


def _boundary(content_type: str) -> bytes:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"').encode("latin-1")
    raise ApiError(400, "multipart body without a boundary")


def _file_part(view: mmap.mmap, delimiter: bytes) -> tuple[int, int] | None:
    """Offsets (start, end) of the part named ``file``, else of the first file part."""
    first_file: tuple[int, int] | None = None
    position = view.find(delimiter)
    while position != -1:
        head_end = view.find(b"\r\n\r\n", position)
        end = view.find(b"\r\n" + delimiter, head_end) if head_end != -1 else -1
        if end == -1:
            break
        head = view[position:head_end].decode("latin-1").lower()
        if re.search(r'\bname="file"', head):
            return head_end + 4, end
        if first_file is None and "filename=" in head:
            first_file = (head_end + 4, end)
        position = view.find(delimiter, end + 2)
    return first_file


def unwrap_multipart(path: Path, content_type: str) -> int:
    """Keep only the file part of a multipart/form-data body stored at ``path``.

    The published SDK POSTs the audio as a form and the SDK documentation's
    recipe uploads "via httpx multipart" (a ``PUT`` or ``POST`` whose file field
    is ``file``); the body is scanned through ``mmap`` so even a large form is
    never read into memory. Returns the new size.
    """
    delimiter = b"--" + _boundary(content_type)
    if path.stat().st_size == 0:
        raise ApiError(400, "the multipart body is empty")
    tmp = path.with_suffix(".part")
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
        found = _file_part(view, delimiter)
        if found is None:
            raise ApiError(400, "the multipart body has no complete file part")
        start, end = found
        with tmp.open("wb") as out:
            for offset in range(start, end, CHUNK):
                out.write(view[offset : min(offset + CHUNK, end)])
    shutil.move(tmp, path)
    return path.stat().st_size
