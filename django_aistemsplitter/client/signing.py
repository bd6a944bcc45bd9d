"""HMAC-SHA256 webhook signatures: ``AIStemSplitter-Signature: t=<unix>,v1=<hex>``.

``hex = HMAC-SHA256(secret, f"{t}." + raw_body)``. During a secret rotation a
header may carry several ``v1=`` entries, and the receiver may hold several
secrets: any pair that matches is enough. Comparison is constant-time and a
timestamp further than ``tolerance`` seconds from now is refused, so a captured
delivery cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

from django_aistemsplitter import contract
from django_aistemsplitter.exceptions import SignatureVerificationError

__all__ = ["compute_signature", "sign_payload", "verify_signature"]


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
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureVerificationError("signature timestamp is not an integer") from None
        elif key == "v1":
            signatures.append(value.strip())
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

    Raises :class:`SignatureVerificationError` (a ``SuspiciousOperation``) for a
    missing, malformed, stale or non-matching signature. ``secret`` may be a list
    during a rotation. ``tolerance=None`` disables the age check (tests only).
    """
    if not header:
        raise SignatureVerificationError("missing signature header")
    secrets = [secret] if isinstance(secret, str) else [s for s in secret if s]
    if not secrets or not all(secrets):
        raise SignatureVerificationError("no webhook secret configured to verify against")
    timestamp, candidates = _parse(header)
    if tolerance is not None:
        current = time.time() if now is None else now
        if abs(current - timestamp) > tolerance:
            raise SignatureVerificationError(
                f"signature timestamp is outside the {tolerance}s tolerance"
            )
    matched = False
    for s in secrets:
        expected = compute_signature(payload, s, timestamp)
        for candidate in candidates:
            # Keep looping after a match so the time taken does not depend on which matched.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureVerificationError("signature does not match the payload")
    return timestamp
