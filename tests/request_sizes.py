"""Test-only middleware: how many bytes each request to Django carried and was read.

The direct-upload tests assert that the audio never reached a Django request
handler: add :class:`RequestSizeMiddleware` first in ``MIDDLEWARE`` (the
:func:`recording_middleware` list) for a server started under that setting, and
read :data:`RECORDED` afterwards. Each entry keeps the method, the path, the
``Content-Length`` the client sent and how many body bytes Django actually read
(the request's ``LimitedStream`` position once the response is made).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

__all__ = ["RECORDED", "RequestSize", "RequestSizeMiddleware", "recording_middleware"]


@dataclass(frozen=True)
class RequestSize:
    method: str
    path: str
    content_length: int
    bytes_read: int

    @property
    def largest(self) -> int:
        return max(self.content_length, self.bytes_read)


#: Every request seen since the list was last cleared (the live server's threads append).
RECORDED: list[RequestSize] = []
_lock = threading.Lock()


class RequestSizeMiddleware:
    """Record each request's declared and read body size (after the view ran)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = -1
        try:
            return self.get_response(request)
        finally:
            stream = getattr(request, "_stream", None)
            read = int(getattr(stream, "_pos", 0) or 0)
            with _lock:
                RECORDED.append(RequestSize(request.method or "", request.path, declared, read))


def recording_middleware() -> list[str]:
    """The project's ``MIDDLEWARE`` with :class:`RequestSizeMiddleware` first."""
    return [f"{__name__}.RequestSizeMiddleware", *settings.MIDDLEWARE]
