"""HMAC-SHA256 webhook signatures: ``AIStemSplitter-Signature: t=<unix>,v1=<hex>``.

``hex = HMAC-SHA256(secret, f"{t}." + raw_body)``. During a secret rotation a
header may carry several ``v1=`` entries, and the receiver may hold several
secrets: any pair that matches is enough. Comparison is constant-time and a
timestamp further than ``tolerance`` seconds from now is refused, so a captured
delivery cannot be replayed later.

The header comes from whoever sent the request, so it is parsed as hostile: a
timestamp that is not a plausible unix time, a ``v1`` that is not 64 hex digits
(non-ASCII included) or an absurdly long header raise
:class:`SignatureVerificationError`, never anything else.

:func:`parse_secrets` is the one reader of configured secrets (constructor
argument, Django setting, environment variable), so the client, the webhook view
and the system checks agree on what a valid configuration is.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable

from django_aistemsplitter import contract
from django_aistemsplitter.client.exceptions import SignatureVerificationError

__all__ = ["compute_signature", "parse_secrets", "sign_payload", "verify_signature"]

#: Far more than a header with a few rotated ``v1`` entries needs.
MAX_HEADER_LENGTH = 4096
#: Unix seconds have 10 digits until the year 2286; 12 leaves room and no overflow.
_MAX_TIMESTAMP_DIGITS = 12
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


def parse_secrets(value: object, *, split_commas: bool) -> tuple[str, ...]:
    """The webhook signing secret(s) in ``value``, stripped, in order.

    ``value`` is ``None`` (no secret: ``()``), one string, or a list/tuple of
    strings during a rotation. ``split_commas`` is for values read from an
    environment variable, which can only hold one string: commas then separate
    the rotated secrets and blank pieces are skipped. In a list every entry must
    be a non-empty string. Raises :class:`TypeError` for any other type and
    :class:`ValueError` for a blank list entry; messages never show a secret.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        pieces = value.split(",") if split_commas else [value]
        return tuple(piece.strip() for piece in pieces if piece.strip())
    if isinstance(value, (list, tuple)):
        secrets: list[str] = []
        for number, item in enumerate(value, start=1):
            if not isinstance(item, str):
                raise TypeError(
                    f"webhook secret #{number} is a {type(item).__name__}, not a string"
                )
            if not item.strip():
                raise ValueError(f"webhook secret #{number} is empty")
            secrets.append(item.strip())
        return tuple(secrets)
    raise TypeError(
        f"webhook secrets must be a string or a list of strings, not a {type(value).__name__}"
    )


def compute_signature(payload: bytes, secret: str, timestamp: int) -> str:
    message = str(int(timestamp)).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign_payload(payload: bytes, secret: str | Iterable[str], timestamp: int | None = None) -> str:
    """Build the signature header value; several secrets give several ``v1=`` entries."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    secrets = [secret] if isinstance(secret, str) else list(secret)
    entries = [f"v1={compute_signature(payload, s, ts)}" for s in secrets]
    return ",".join([f"t={ts}", *entries])


def _parse(header: str) -> tuple[int, list[str]]:
    if len(header) > MAX_HEADER_LENGTH:
        raise SignatureVerificationError("signature header is too long")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            continue
        if key == "t":
            if not (value.isascii() and value.isdigit() and len(value) <= _MAX_TIMESTAMP_DIGITS):
                raise SignatureVerificationError("signature timestamp is not a unix time")
            timestamp = int(value)
        elif key == "v1" and value.isascii() and _SIGNATURE.fullmatch(value.lower()):
            # Anything else (wrong length, non-hex, non-ASCII) cannot match: skip it.
            signatures.append(value.lower())
    if timestamp is None:
        raise SignatureVerificationError("signature header has no timestamp (t=)")
    if not signatures:
        raise SignatureVerificationError("signature header has no v1 signature")
    return timestamp, signatures


def verify_signature(
    payload: bytes,
    header: str | None,
    secret: str | Iterable[str],
    tolerance: int | None = contract.SIGNATURE_TOLERANCE_SECONDS,
    *,
    now: float | None = None,
) -> int:
    """Check ``header`` against ``payload``; return the signed timestamp.

    Raises :class:`SignatureVerificationError` for a missing, malformed, stale or
    non-matching signature, or when no secret is given. ``secret`` may be a list
    during a rotation. ``tolerance=None`` disables the age check (tests only).
    """
    if not header:
        raise SignatureVerificationError("missing signature header")
    secrets = [secret] if isinstance(secret, str) else [s for s in secret if s]
    if not secrets or not all(secrets):
        raise SignatureVerificationError("no webhook secret configured to verify against")
    body = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else bytes(payload)
    timestamp, candidates = _parse(header)
    if tolerance is not None:
        current = time.time() if now is None else now
        if abs(current - timestamp) > tolerance:
            raise SignatureVerificationError(
                f"signature timestamp is outside the {tolerance}s tolerance"
            )
    matched = False
    for s in secrets:
        expected = compute_signature(body, s, timestamp)
        for candidate in candidates:
            # Keep looping after a match so the time taken does not depend on which matched.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureVerificationError("signature does not match the payload")
    return timestamp
