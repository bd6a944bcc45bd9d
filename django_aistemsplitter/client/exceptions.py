"""Every error the API client raises, on plain Python bases (no Django needed).

:class:`AiStemSplitterError` is the one base class of the whole package: the
Django side (``django_aistemsplitter.exceptions``) re-exports it and every class
here, and adds Django-flavoured subclasses for the few errors it raises itself
(a ``ConfigurationError`` that is also ``ImproperlyConfigured``, an
``UnsafeStemNameError`` that is also ``SuspiciousOperation``). Catch the class
from this module to cover both kinds.

Each class also inherits the builtin type that carries its meaning where there
is one (``ValueError`` for input that will never be accepted, ``TimeoutError``
for timeouts), so generic handlers do the right thing without knowing us.
No message built here contains an API key or a webhook secret.

The classes are defined in :mod:`django_aistemsplitter._errors` (plain Python, the
standard library only) and re-exported here, their public home: code that only needs an error
class, like the engines' child process, can then import them without running
this package's ``__init__`` (httpx and both clients). They are the same objects,
and their ``__module__`` names this module.
"""

from __future__ import annotations

from django_aistemsplitter._errors import (
    AiStemSplitterError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ConfigurationError,
    DownloadError,
    DownloadRefusedError,
    DownloadTimeoutError,
    IdempotencyConflictError,
    IncompleteDownloadError,
    InsufficientCreditsError,
    InvalidRequestError,
    MalformedWebhookError,
    NetworkError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    SignatureVerificationError,
    SplitFailedError,
    UnsafeStemNameError,
    UnsupportedAudioError,
)

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
