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
``ParseError`` (400). What parsed JSON may hold is decided in
:mod:`django_aistemsplitter.jsonvalues` (re-exported here), which also serves the
``metadata`` field, sent by a form or multipart request as a JSON string, and the
webhook receiver.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import IO, Any, ClassVar

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import QueryDict
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from django_aistemsplitter.jsonvalues import MAX_JSON_DEPTH, json_problem, loads

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


class _BoundedParser(parsers.BaseParser):
    """What the three parsers share: every way a body can be refused is a 400.

    A charset that is not a text encoding, a body over Django's limits and input
    the subclass cannot parse (any ``ValueError``: ``JSONDecodeError``,
    ``UnicodeDecodeError`` ...) all become a ``ParseError`` whose message names
    the kind of body. A subclass parses in :meth:`parse_body`.
    """

    #: How the 400's message names the body: ``"JSON parse error - ..."``.
    kind: ClassVar[str]

    def parse(
        self,
        stream: IO[Any] | None,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = _encoding(parser_context)
        try:
            return self.parse_body(stream, encoding, media_type, parser_context)
        except (*BODY_LIMIT_ERRORS, ValueError) as exc:
            raise ParseError(f"{self.kind} parse error - {exc}") from None

    def parse_body(self, stream: IO[Any] | None, encoding: str, *drf_args: Any) -> Any:
        """The parsed body, in ``encoding`` (known to be a text encoding).

        ``drf_args`` are DRF's ``media_type`` and ``parser_context``, for a
        parser that hands the stream on to DRF's own ``parse``.
        """
        raise NotImplementedError


class JSONParser(_BoundedParser, parsers.JSONParser):
    """``application/json``, bounded in size and depth; strict about what JSON is."""

    kind = "JSON"

    def parse_body(self, stream: IO[Any] | None, encoding: str, *drf_args: Any) -> Any:
        return loads(_read(stream).decode(encoding), depth=MAX_JSON_DEPTH + 1)


class FormParser(_BoundedParser, parsers.FormParser):
    """``application/x-www-form-urlencoded``, bounded like Django's ``request.POST``."""

    kind = "Form"

    def parse_body(self, stream: IO[Any] | None, encoding: str, *drf_args: Any) -> Any:
        return QueryDict(_read(stream), encoding=encoding)


class MultiPartParser(_BoundedParser, parsers.MultiPartParser):
    """``multipart/form-data``: Django's limits answer 400 like any other parse error.

    Uploads stream through the request's upload handlers, so the create view's
    size limit (:mod:`django_aistemsplitter.uploads`) applies while it is read.
    """

    kind = "Multipart form"

    def parse_body(self, stream: IO[Any] | None, encoding: str, *drf_args: Any) -> Any:
        if stream is None:
            raise ParseError(f"{self.kind} parse error - no body.")
        return parsers.MultiPartParser.parse(self, stream, *drf_args)
