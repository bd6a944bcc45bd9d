"""Request body parsers of the split API: bounded, and a 400 for any malformed body.

DRF's stock parsers are fine for well-formed input but let some bad bodies
through as a 500 or an unbounded read:

* a JSON or form body is read whole, whatever its size (Django bounds
  ``request.body`` by ``DATA_UPLOAD_MAX_MEMORY_SIZE``, but DRF reads the stream);
* the charset a client names is used as given: ``charset=zlib`` or ``rot13`` is a
  codec Python knows but not a text encoding (a ``LookupError``, or a body that
  inflates);
* JSON nested tens of thousands deep raises ``RecursionError``; ``NaN``,
  ``1e400`` (infinity) and unpaired surrogates (``"\\ud800"``) parse, then break
  the database or the rendering of the answer;
* Django's own body limits (``DATA_UPLOAD_MAX_MEMORY_SIZE``,
  ``DATA_UPLOAD_MAX_NUMBER_FIELDS`` ...) raise ``SuspiciousOperation``, which DRF
  does not turn into a 400 body (the view maps :data:`BODY_LIMIT_ERRORS`).

These parsers keep DRF's behaviour for good input and turn each of those into a
``ParseError`` (400). :func:`loads` and :func:`json_problem` also serve the
``metadata`` field, which a form or multipart request sends as a JSON string.
"""

from __future__ import annotations

import codecs
import json
import math
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import QueryDict
from rest_framework import parsers
from rest_framework.exceptions import ParseError

__all__ = [
    "BODY_LIMIT_ERRORS",
    "MAX_JSON_DEPTH",
    "FormParser",
    "JSONParser",
    "MultiPartParser",
    "json_problem",
    "loads",
]

#: What Django raises (as ``SuspiciousOperation``) when a body is over its limits.
BODY_LIMIT_ERRORS = (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent)

#: Deepest nesting of arrays and objects accepted in ``metadata``; a JSON body may
#: nest one level more (the request object around it).
MAX_JSON_DEPTH = 32


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _has_lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def json_problem(value: Any, *, storable: bool = False, depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why ``value`` (parsed JSON) is refused, or None.

    Always: arrays and objects nested more than ``depth`` levels and strings with unpaired
    surrogates (they cannot be encoded as UTF-8, so neither stored nor sent back).
    With ``storable`` also what PostgreSQL's ``jsonb`` refuses: the NUL character
    (``\\u0000``) and numbers that are not finite. The walk is iterative, so the
    depth of ``value`` cannot exhaust the stack.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            if level >= depth:
                return f"nested deeper than {depth} levels"
            if isinstance(item, dict):
                stack.extend((key, level) for key in item)
                stack.extend((child, level + 1) for child in item.values())
            else:
                stack.extend((child, level + 1) for child in item)
        elif isinstance(item, str):
            if _has_lone_surrogate(item):
                return "a string holds an unpaired surrogate"
            if storable and "\x00" in item:
                return "a string holds the NUL character (\\u0000)"
        elif storable and isinstance(item, float) and not math.isfinite(item):
            return "a number is out of range"
    return None


def loads(text: str | bytes, *, depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON text; ``ValueError`` with a short reason for anything refused.

    ``NaN`` and ``Infinity`` are not JSON; nesting is bounded by Python's
    recursion limit while parsing and by ``depth`` levels after.
    """
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError(f"nested deeper than {depth} levels") from None
    problem = json_problem(value, depth=depth)
    if problem is not None:
        raise ValueError(problem)
    return value


#: Text encodings a body may not use: their decoders are slow on large input.
_REFUSED_ENCODINGS = frozenset({"idna", "punycode"})


def _encoding(parser_context: Mapping[str, Any] | None) -> str:
    """The request's charset, when it is a text encoding (``zlib`` or ``rot13`` are not)."""
    encoding = str((parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET)
    refused = ParseError(f"Unsupported charset {encoding!r}.")
    try:
        if codecs.lookup(encoding).name in _REFUSED_ENCODINGS:
            raise refused
        # Decoding (non-empty) bytes is what refuses codecs that are not text encodings.
        b"\x00\x00\x00\x00".decode(encoding)
    except (UnicodeError, ValueError):
        pass  # a text encoding, which these four bytes do not suit
    except LookupError:
        raise refused from None
    return encoding


def _read(stream: IO[Any] | None) -> bytes:
    """The body, or ``ParseError`` once it is over ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""
    if stream is None:
        return b""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is None:
        return stream.read()
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise ParseError(
            f"The request body is over {limit} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE); "
            "upload audio as multipart/form-data."
        )
    return body


class JSONParser(parsers.JSONParser):
    """``application/json``, bounded in size and depth; strict about what JSON is."""

    def parse(
        self,
        stream: IO[Any] | None,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = _encoding(parser_context)
        body = _read(stream)
        try:
            return loads(body.decode(encoding), depth=MAX_JSON_DEPTH + 1)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError too
            raise ParseError(f"JSON parse error - {exc}") from None


class FormParser(parsers.FormParser):
    """``application/x-www-form-urlencoded``, bounded like Django's ``request.POST``."""

    def parse(
        self,
        stream: IO[Any] | None,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = _encoding(parser_context)
        body = _read(stream)
        try:
            return QueryDict(body, encoding=encoding)
        except (*BODY_LIMIT_ERRORS, ValueError) as exc:
            raise ParseError(f"Form parse error - {exc}") from None


class MultiPartParser(parsers.MultiPartParser):
    """``multipart/form-data``: Django's limits answer 400 like any other parse error.

    Uploads stream through the request's upload handlers, so the create view's
    size limit (:mod:`django_aistemsplitter.uploads`) applies while it is read.
    """

    def parse(
        self,
        stream: IO[Any] | None,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        _encoding(parser_context)
        if stream is None:
            raise ParseError("Multipart form parse error - no body.")
        try:
            return super().parse(stream, media_type, parser_context)
        except (*BODY_LIMIT_ERRORS, ValueError) as exc:
            raise ParseError(f"Multipart form parse error - {exc}") from None
