"""Every error this package raises derives from :class:`AiStemSplitterError`.

Subclasses also inherit the Django or builtin type that already carries the right
meaning, so existing handlers do the right thing without knowing about us:
``ImproperlyConfigured`` for settings, ``SuspiciousOperation`` (Django answers 400)
for forged webhooks and hostile stem names, ``ValueError`` for bad input.
Only ``django.core.exceptions`` is imported, which needs no configured settings.
"""

from __future__ import annotations

import builtins
from typing import Any

from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation


class AiStemSplitterError(Exception):
    """Base class of every error raised by django-aistemsplitter."""


class ConfigurationError(AiStemSplitterError, ImproperlyConfigured):
    """A setting or constructor argument is missing or invalid."""


# --- errors of the remote API -------------------------------------------------


class APIError(AiStemSplitterError):
    """An error answered by the API, or met on the way to it.

    ``message`` is the service's text; it never contains the API key, which the
    client never puts into an error.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.details = details

    def __str__(self) -> str:
        parts = [self.message]
        if self.code:
            parts.insert(0, f"[{self.code}]")
        if self.status_code:
            parts.insert(0, f"HTTP {self.status_code}")
        if self.request_id:
            parts.append(f"(request id {self.request_id})")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code!r}, code={self.code!r}, "
            f"message={self.message!r})"
        )


class AuthenticationError(APIError):
    """401: the API key is missing, wrong or revoked."""


class InsufficientCreditsError(APIError):
    """402: the account has too few credits for this audio."""


class NotFoundError(APIError):
    """404: no such split (or upload) for this account."""


class IdempotencyConflictError(APIError):
    """409: the idempotency key was already used with a different request body."""


class InvalidRequestError(APIError, ValueError):
    """400/413/422: the request or its audio was rejected; retrying will not help."""


class PayloadTooLargeError(InvalidRequestError):
    """413: the audio is over the size limit for this route."""


class UnsupportedAudioError(InvalidRequestError):
    """422: the input is not audio the service can decode."""


class RateLimitError(APIError):
    """429: too many requests; ``retry_after`` is the server's hint in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: the service failed; retried automatically, raised once retries run out."""


class NetworkError(APIError):
    """The service could not be reached (connection refused, reset, DNS)."""


class APITimeoutError(NetworkError, builtins.TimeoutError):
    """A request, or a wait for a split, took longer than allowed."""


class SignatureVerificationError(AiStemSplitterError, SuspiciousOperation):
    """A webhook's signature is missing, malformed, stale or does not match."""


class SplitFailedError(AiStemSplitterError):
    """The split ended in ``failed``; ``code``/``message`` come from the service."""

    def __init__(self, message: str, *, code: str | None = None, split_id: str | None = None):
        super().__init__(message)
        self.code = code
        self.split_id = split_id


# --- errors of downloads, audio and engines -------------------------------------


class UnsafeStemNameError(AiStemSplitterError, SuspiciousOperation):
    """A stem name could escape its directory or storage prefix (``../../x``)."""


class DownloadError(AiStemSplitterError):
    """A stem download was refused (host not allowed, too big) or arrived incomplete."""


class AudioDecodeError(AiStemSplitterError, ValueError):
    """The bytes are not audio that libsndfile can decode (or are empty/corrupt)."""


class EngineError(AiStemSplitterError):
    """A local separation engine failed."""


class UnsupportedModelError(EngineError, ValueError):
    """The engine (or backend) does not serve the requested model name."""


class ModelWeightsNotFoundError(EngineError, ConfigurationError):
    """Weights for a Demucs model are not where we looked; the message says where."""


# --- errors of the Django side ---------------------------------------------------


class InvalidTransitionError(AiStemSplitterError):
    """A job status change would move backwards (statuses only move forward)."""
