"""Every error this package raises derives from :class:`AiStemSplitterError`.

The hierarchy of the API client (:mod:`django_aistemsplitter.client.exceptions`)
is on plain Python bases, so the client works where Django is not installed. This
module re-exports all of it and adds what only the Django side needs:

* Django-flavoured subclasses of two client errors, raised by the Django side
  (settings, storage, ingest, engines): :class:`ConfigurationError` is also an
  ``ImproperlyConfigured`` and :class:`UnsafeStemNameError` also a
  ``SuspiciousOperation`` (Django answers 400 and logs it to ``django.security``).
  The client itself raises the plain parents, so ``except`` the client's class
  (``django_aistemsplitter.client.ConfigurationError``) to cover both.
* Errors of the local engines and of job state.

Errors only the client raises are the same class object here and there.
:class:`SignatureVerificationError` (and its subclass
:class:`MalformedWebhookError`) is raised by the pure signing and event-parsing
code, so it is a plain ``ValueError``, not a ``SuspiciousOperation``: the webhook
view catches it explicitly and answers 400 with a short reason.

Only ``django.core.exceptions`` is imported, which needs no configured settings,
and the client's classes come from where they are defined
(:mod:`django_aistemsplitter._errors`), not through the ``client`` package: its
``__init__`` loads httpx and both clients, which the engines (and their child
process) must not pay for just to raise an :class:`EngineError`. They are the
same class objects as ``django_aistemsplitter.client.exceptions``'.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation

from django_aistemsplitter import _errors as client_errors

# Named one by one, not with ``*`` as the client's modules do: this module
# redefines ConfigurationError and UnsafeStemNameError, and a star import would
# bind those two names to the client's classes for mypy (a no-redef error, then
# the wrong type wherever they are used).
from django_aistemsplitter._errors import (  # noqa: F401 (re-exported through __all__)
    AiStemSplitterError,
    APIError,
    APITimeoutError,
    AuthenticationError,
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
    UnsupportedAudioError,
)
from django_aistemsplitter._errors import __all__ as __all__

# The client's names first: imported as this module's ``__all__`` so that mypy
# counts them as exported (see client/exceptions.py), then the Django side's own.
__all__ = [
    *__all__,
    "AudioDecodeError",
    "EngineError",
    "InvalidTransitionError",
    "ModelWeightsNotFoundError",
    "UnsupportedModelError",
]


class ConfigurationError(client_errors.ConfigurationError, ImproperlyConfigured):
    """A setting is missing or invalid (also Django's ``ImproperlyConfigured``)."""


class UnsafeStemNameError(client_errors.UnsafeStemNameError, SuspiciousOperation):
    """A stem name could escape its directory or storage prefix (also ``SuspiciousOperation``)."""


# --- errors of audio and engines --------------------------------------------------


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
