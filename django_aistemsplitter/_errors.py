"""The package's error hierarchy, on plain Python bases: no Django, no HTTP client.

Import these classes from :mod:`django_aistemsplitter.client.exceptions` (the
API client's errors) or :mod:`django_aistemsplitter.exceptions` (all of them,
with the Django side's own): both re-export the very classes defined here, which
say that their module is the client's, where they are documented.

They live outside the ``client`` package so that code which only needs an error
class does not import the client: importing ``client.exceptions`` runs
``client/__init__``, which loads httpx and both clients (0.2 to 0.35 s). The
engines' child process (:mod:`~django_aistemsplitter.engines.isolation`) and the
engines' command line raise engine errors through
:mod:`django_aistemsplitter.exceptions` and never talk to the service, so they
now start without it.

Each class also inherits the builtin type that carries its meaning where there
is one (``ValueError`` for input that will never be accepted, ``TimeoutError``
for timeouts), so generic handlers do the right thing without knowing us.
No message built here contains an API key or a webhook secret.
"""

from __future__ import annotations

import builtins
from typing import Any

# The one list of these names: client.exceptions, client and exceptions
# re-export it (``from ._errors import __all__ as __all__``), never spell it out.
__all__ = [
    "APIError",
    "APITimeoutError",
    "AiStemSplitterError",
    "AuthenticationError",
    "ConfigurationError",
    "DownloadError",
    "DownloadRefusedError",
    "DownloadTimeoutError",
    "IdempotencyConflictError",
    "IncompleteDownloadError",
    "InsufficientCreditsError",
    "InvalidRequestError",
    "MalformedWebhookError",
    "NetworkError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitError",
    "ServerError",
    "SignatureVerificationError",
    "SplitFailedError",
    "UnsafeStemNameError",
    "UnsupportedAudioError",
]


class AiStemSplitterError(Exception):
    """Base class of every error raised by django-aistemsplitter, client or Django side."""


class ConfigurationError(AiStemSplitterError):
    """A constructor argument or setting is missing or invalid."""


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
    """429: too many requests; ``retry_after`` is the server's hint in seconds (uncapped).

    Pass it through :func:`~django_aistemsplitter.client.cap_retry_after` before
    sleeping: a broken or hostile server can send any number.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: the service failed; retried automatically, raised once retries run out."""


class NetworkError(APIError):
    """The service could not be reached (connection refused, reset, DNS)."""


class APITimeoutError(NetworkError, builtins.TimeoutError):
    """A request, or a wait for a split, took longer than allowed."""


class SplitFailedError(AiStemSplitterError):
    """The split ended in ``failed``; ``code``/``message`` come from the service."""

    def __init__(self, message: str, *, code: str | None = None, split_id: str | None = None):
        super().__init__(message)
        self.code = code
        self.split_id = split_id


# --- webhooks -------------------------------------------------------------------


class SignatureVerificationError(AiStemSplitterError, ValueError):
    """A webhook delivery could not be verified: answer it with 400.

    Raised for a missing, malformed, stale or non-matching signature, and (as the
    subclass :class:`MalformedWebhookError`) for a correctly signed body that is
    not an event. It is a plain ``ValueError``, not Django's
    ``SuspiciousOperation``: a receiver catches it explicitly.
    """


class MalformedWebhookError(SignatureVerificationError):
    """The signature matched, but the body is not an event this package can read.

    A subclass of :class:`SignatureVerificationError` so that a handler written
    for the one error (as the service's examples are) answers 400 to both;
    catch this one first to record why a signed delivery was refused.
    """


# --- downloads --------------------------------------------------------------------


class DownloadError(AiStemSplitterError):
    """A stem download was refused (host, scheme, size) or did not arrive complete."""


class DownloadRefusedError(DownloadError):
    """The download is not allowed (host, scheme, size, redirects): retrying cannot help."""


class IncompleteDownloadError(DownloadError):
    """The body arrived short, the transfer broke or the host answered an error: worth a retry."""


class DownloadTimeoutError(IncompleteDownloadError, builtins.TimeoutError):
    """The download took longer than its policy's overall deadline."""


class UnsafeStemNameError(AiStemSplitterError, ValueError):
    """A stem name could escape its directory or storage prefix (``../../x``)."""


#: The public home of these classes: what ``repr``, pickling and the docs name.
PUBLIC_MODULE = "django_aistemsplitter.client.exceptions"

for _name in __all__:
    globals()[_name].__module__ = PUBLIC_MODULE
del _name
