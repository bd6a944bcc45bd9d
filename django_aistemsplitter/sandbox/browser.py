"""What a browser needs of the signed URLs: CORS, and byte ranges on downloads.

A direct upload sends the file from a web page straight to the ``uploadUrl``,
and a player or a validating reader fetches parts of the ``audioUrl``; both are
cross-origin requests, which a browser makes only if the server says so (a
preflight ``OPTIONS`` answered with ``Access-Control-Allow-*``, and
``Access-Control-Allow-Origin`` on the answer itself), and the real service's
storage says so. Only the signed routes answer this way: they carry their own
credential in the URL, never a cookie or the account's key, so any origin may
use them. The bearer-key API is for servers and stays without CORS, so a page
cannot be tricked into spending the account.

A download honours one ``Range`` (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``): 206
with ``Content-Range``; a range past the end is 416 with ``bytes */<size>``;
several ranges or another unit get the whole file (200), as HTTP allows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.message import Message

__all__ = [
    "CORS_MAX_AGE",
    "EXPOSED_HEADERS",
    "byte_range",
    "cors_headers",
    "preflight_headers",
]

#: Seconds a browser may reuse a preflight's answer.
CORS_MAX_AGE = 600
#: Request headers an upload or a ranged download sends beyond the CORS-safe ones.
ALLOWED_HEADERS = ("Content-Type", "Content-Range", "Range", "If-Range", "x-amz-acl")
#: Response headers a page's script may read (a reader needs the range and size).
EXPOSED_HEADERS = (
    "Accept-Ranges",
    "Content-Length",
    "Content-Range",
    "Content-Type",
    "ETag",
    "X-Request-Id",
)

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


def cors_headers(request_headers: Message) -> dict[str, str]:
    """The headers every answer of a signed route carries (errors included, so a
    page can read why its upload was refused)."""
    headers = {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": ", ".join(EXPOSED_HEADERS),
    }
    if request_headers.get("Origin"):
        headers["Vary"] = "Origin"
    return headers


def preflight_headers(request_headers: Message, methods: Iterable[str]) -> dict[str, str]:
    """The answer to a preflight ``OPTIONS`` of a signed route allowing ``methods``.

    The headers the browser asks to send are allowed when they are well-formed
    tokens (a signed URL's signature is the protection, not a header list), so
    a client adding its own header does not fail its preflight for nothing.
    """
    allowed = {name.lower(): name for name in ALLOWED_HEADERS}
    asked = request_headers.get("Access-Control-Request-Headers") or ""
    for name in (part.strip() for part in asked.split(",")):
        if name and _TOKEN.match(name):
            allowed.setdefault(name.lower(), name)
    return {
        **cors_headers(request_headers),
        "Access-Control-Allow-Methods": ", ".join([*sorted(set(methods)), "OPTIONS"]),
        "Access-Control-Allow-Headers": ", ".join(allowed.values()),
        "Access-Control-Max-Age": str(CORS_MAX_AGE),
    }


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The ``(first, last)`` bytes one ``Range`` asks for, or None for the whole file.

    Raises ``ValueError`` when the range cannot be satisfied (it starts past the
    end, or asks for the last 0 bytes).
    """
    found = _RANGE.match(header or "")
    if found is None:
        return None
    first, last = found.groups()
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise ValueError("an empty suffix range")
        return max(0, size - suffix), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # not a valid range: ignored, the whole file is sent
    if start >= size:
        raise ValueError("the range starts past the end")
    return start, min(int(last), size - 1) if last else size - 1
