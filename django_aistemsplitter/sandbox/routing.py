"""Requests, responses and the route table, independent of the HTTP server class.

Routes carry a *kind* that decides what protects them: ``api`` routes take the
bearer key and suffer injected faults, ``signed`` routes (uploads, downloads)
authenticate by their URL signature, ``control`` routes (stats) take the key but
never fail on purpose, and ``public`` ones (health) take nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from django_aistemsplitter.sandbox.bodies import ByteStream
from django_aistemsplitter.sandbox.errors import ApiError

API_PREFIX = "/v1"
API, SIGNED, CONTROL, PUBLIC = "api", "signed", "control", "public"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Message
    stream: ByteStream
    params: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: Set once the body has been read to its end (else the connection is closed).
    body_consumed: bool = False

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; 400 for anything else."""
        if not self.body.strip():
            raise ApiError(400, "the request body must be a JSON object")
        try:
            value = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return value


@dataclass
class Response:
    status: int = 200
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: A file to stream instead of a JSON payload.
    file: Path | None = None
    content_type: str = "application/json"
    #: For a file: bytes to send before cutting the connection (injected fault).
    truncate_at: int | None = None
    #: For a file: pace the body at this many bytes per second (throttled downloads).
    bytes_per_second: int | None = None
    #: For a file: send only bytes ``first..last`` (inclusive) of it (a ``Range`` answer).
    file_range: tuple[int, int] | None = None


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    kind: str
    handler: Handler
    pattern: re.Pattern[str]

    @property
    def label(self) -> str:
        """How stats and logs name the route: method and template, never a raw path."""
        return f"{self.method} {self.template}"


def compile_template(template: str) -> re.Pattern[str]:
    """``/audio/splits/{id}`` -> a regex with a named group per ``{param}``."""
    parts = re.split(r"(\{\w+\})", template)
    regex = "".join(
        f"(?P<{part[1:-1]}>[A-Za-z0-9_.-]+)" if part.startswith("{") else re.escape(part)
        for part in parts
    )
    return re.compile(f"^{regex}$")


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, Route]] = []

    def add(self, method: str, template: str, kind: str, handler: Handler) -> None:
        """``api`` templates are written without ``/v1``; they are served under it."""
        full = API_PREFIX + template if kind == API else template
        route = Route(method, template, kind, handler, compile_template(full))
        self._routes.append((full, route))

    def routes_at(self, path: str) -> list[Route]:
        """Every route whose template matches ``path``, whatever its method."""
        return [route for _full, route in self._routes if route.pattern.match(path)]

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route and its path parameters; 404 or 405 as an :class:`ApiError`."""
        allowed = []
        for _full, route in self._routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict()
            allowed.append(route.method)
        if allowed:
            raise ApiError(
                405, f"{method} is not allowed here", headers={"Allow": ", ".join(allowed)}
            )
        raise ApiError(404, "no such endpoint")
