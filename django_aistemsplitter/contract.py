"""The wire facts of the AiStemSplitter API, in one place.

``../shared/api-contract.md`` is the source; values marked "our choice" there are
not published by the service and live here so they are easy to change. The client,
the sandbox server and the Django side all read these names instead of repeating
literals.
"""

from __future__ import annotations

import re
from typing import Final

DEFAULT_BASE_URL: Final = "https://api.aistemsplitter.org/v1"
API_KEY_ENV: Final = "AISTEMSPLITTER_API_KEY"
WEBHOOK_SECRET_ENV: Final = "AISTEMSPLITTER_WEBHOOK_SECRET"  # noqa: S105 - a variable name

AUTH_HEADER: Final = "Authorization"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
REQUEST_ID_HEADER: Final = "X-Request-Id"
SIGNATURE_HEADER: Final = "AIStemSplitter-Signature"
SIGNATURE_TOLERANCE_SECONDS: Final = 300
IDEMPOTENCY_TTL_SECONDS: Final = 24 * 3600

# Audio sent through the gateway at most; larger files go through uploads.
MAX_DIRECT_BYTES: Final = 50 * 1000 * 1000

FOUR_STEMS: Final = ("vocals", "drums", "bass", "other")
SIX_STEMS: Final = ("vocals", "drums", "bass", "other", "guitar", "piano")

#: Hosted model name -> the stems it returns, in the service's order.
MODELS: Final[dict[str, tuple[str, ...]]] = {
    "htdemucs_ft": FOUR_STEMS,
    "htdemucs": FOUR_STEMS,
    "htdemucs_6s": SIX_STEMS,
}
DEFAULT_MODEL: Final = "htdemucs_ft"
#: The published SDK 0.1.1 sends "4s"/"6s" (our choice: accept them as aliases).
MODEL_ALIASES: Final[dict[str, str]] = {"4s": "htdemucs_ft", "6s": "htdemucs_6s"}

OUTPUT_FORMATS: Final = ("wav", "flac", "mp3")
DEFAULT_OUTPUT_FORMAT: Final = "wav"
CONTENT_TYPES: Final[dict[str, str]] = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
}

# Remote split statuses; they only move forward.
QUEUED: Final = "queued"
PROCESSING: Final = "processing"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
STATUSES: Final = (QUEUED, PROCESSING, SUCCEEDED, FAILED)
TERMINAL_STATUSES: Final = frozenset({SUCCEEDED, FAILED})
STATUS_RANK: Final[dict[str, int]] = {QUEUED: 0, PROCESSING: 1, SUCCEEDED: 2, FAILED: 2}

# Webhook event types: the seed's, and the API page's thin form.
EVENT_SPLIT_SUCCEEDED: Final = "split.succeeded"
EVENT_SPLIT_FAILED: Final = "split.failed"
EVENT_SPLIT_COMPLETED: Final = "audio.split.completed"

#: HTTP status -> error code (our choice where the SDK shows none).
ERROR_CODES: Final[dict[int, str]] = {
    400: "INVALID_REQUEST",
    401: "UNAUTHORIZED",
    402: "INSUFFICIENT_CREDITS",
    404: "NOT_FOUND",
    409: "IDEMPOTENCY_CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    422: "UNSUPPORTED_AUDIO",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    502: "INTERNAL_ERROR",
    503: "INTERNAL_ERROR",
}

LIST_LIMIT_DEFAULT: Final = 20
LIST_LIMIT_MAX: Final = 100

# A stem name becomes part of a file name and a storage key: keep it boring.
STEM_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9_]{0,31}\Z")


def normalize_model(name: str) -> str:
    """Map the SDK's aliases ("4s", "6s") to hosted model names; others pass unchanged."""
    return MODEL_ALIASES.get(name, name)


def stems_for(model: str) -> tuple[str, ...]:
    """The stem names a hosted model returns; ``KeyError`` for an unknown model."""
    return MODELS[normalize_model(model)]


def is_safe_stem_name(name: str) -> bool:
    """True when ``name`` cannot escape a directory or storage prefix."""
    return bool(STEM_NAME_RE.match(name))
