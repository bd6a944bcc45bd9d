"""Expiring, tamper-evident URLs for uploads and downloads.

Uploads and stem downloads carry no bearer key (S3-style presigned URLs), so the
URL itself is the credential: an HMAC over purpose, path and expiry with a key
that never leaves the server. Changing any of them, or waiting past the expiry,
makes the URL useless.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from urllib.parse import urlencode

from django_aistemsplitter.sandbox.errors import SIGNATURE_INVALID, URL_EXPIRED, ApiError

EXPIRES_PARAM = "expires"
SIGNATURE_PARAM = "signature"
#: A signed upload URL only accepts uploads; a download URL only downloads.
UPLOAD = "upload"
DOWNLOAD = "download"


class UrlSigner:
    """Signs and checks ``path?expires=<unix>&signature=<hex>``."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def _digest(self, purpose: str, path: str, expires: int) -> str:
        message = f"{purpose}\n{path}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def sign(self, purpose: str, path: str, ttl_seconds: float) -> tuple[str, int]:
        """Return the signed path-with-query and its expiry (unix seconds)."""
        expires = math.ceil(time.time() + ttl_seconds)
        query = urlencode(
            {EXPIRES_PARAM: expires, SIGNATURE_PARAM: self._digest(purpose, path, expires)}
        )
        return f"{path}?{query}", expires

    def verify(self, purpose: str, path: str, query: dict[str, str]) -> None:
        """Raise a 403 :class:`ApiError` unless ``query`` signs ``path`` and is fresh."""
        raw_expires = query.get(EXPIRES_PARAM, "")
        signature = query.get(SIGNATURE_PARAM, "")
        if not raw_expires.isdigit() or not signature:
            raise ApiError(403, "the URL is not signed", code=SIGNATURE_INVALID)
        expected = self._digest(purpose, path, int(raw_expires))
        if not hmac.compare_digest(expected, signature):
            raise ApiError(403, "the URL signature does not match", code=SIGNATURE_INVALID)
        if int(raw_expires) < time.time():
            raise ApiError(403, "the signed URL has expired; fetch a fresh one", code=URL_EXPIRED)
