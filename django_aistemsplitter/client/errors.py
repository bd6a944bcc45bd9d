"""Turn HTTP answers into this package's exceptions, in exactly one place.

The status code picks the class (the contract ties each status to one code);
the envelope's ``code`` is the fallback for statuses the contract does not
list. A body that is not the JSON envelope (a proxy's HTML error page, an empty
502) still yields a typed error with a readable message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from django_aistemsplitter import contract
from django_aistemsplitter.client.exceptions import (
    APIError,
    AuthenticationError,
    DownloadTimeoutError,
    IdempotencyConflictError,
    IncompleteDownloadError,
    InsufficientCreditsError,
    InvalidRequestError,
    NetworkError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    UnsupportedAudioError,
)
from django_aistemsplitter.client.polling import parse_retry_after

__all__ = ["decode_data", "error_from_response", "is_retryable", "parse_retry_after", "redact"]

_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    404: NotFoundError,
    409: IdempotencyConflictError,
    413: PayloadTooLargeError,
    422: UnsupportedAudioError,
    429: RateLimitError,
}
_BY_CODE: dict[str, type[APIError]] = {
    contract.ERROR_CODES[status]: cls for status, cls in _BY_STATUS.items()
}
_SNIPPET = 200


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Blank out credentials in text that came from elsewhere (a server's message).

    The client never formats a key into a message itself; this guards against a
    server or proxy that echoes the request back into its error body.
    """
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return None


def error_from_response(
    status_code: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    secrets: Iterable[str | None] = (),
) -> APIError:
    """The exception for an error answer (status >= 400)."""
    request_id = headers.get(contract.REQUEST_ID_HEADER) or headers.get(
        contract.REQUEST_ID_HEADER.lower()
    )
    payload = _json(content)
    error = payload.get("error") if isinstance(payload, Mapping) else None
    if isinstance(error, Mapping):
        code = str(error.get("code") or contract.ERROR_CODES.get(status_code) or "") or None
        message = str(error.get("message") or f"HTTP {status_code} error")
        details = error.get("details")
    else:
        code = contract.ERROR_CODES.get(status_code)
        text = content[:_SNIPPET].decode("utf-8", "replace").strip()
        message = f"unexpected HTTP {status_code} response" + (f": {text}" if text else "")
        details = None
    cls = _BY_STATUS.get(status_code)
    if cls is None:
        cls = ServerError if status_code >= 500 else _BY_CODE.get(code or "", APIError)
    kwargs: dict[str, Any] = {
        "status_code": status_code,
        "code": code,
        "request_id": request_id,
        "details": details,
    }
    if issubclass(cls, RateLimitError):
        kwargs["retry_after"] = parse_retry_after(headers.get("Retry-After"))
    return cls(redact(message, secrets), **kwargs)


def decode_data(status_code: int, headers: Mapping[str, str], content: bytes) -> Any:
    """The ``data`` of a success envelope; a malformed success is an :class:`APIError`."""
    payload = _json(content)
    if isinstance(payload, Mapping) and payload.get("success") is True and "data" in payload:
        return payload["data"]
    if isinstance(payload, Mapping) and payload.get("success") is False:
        raise error_from_response(max(status_code, 400), headers, content)
    raise APIError(
        "the API answered with something other than the JSON envelope",
        status_code=status_code,
        request_id=headers.get(contract.REQUEST_ID_HEADER),
    )


def is_retryable(error: BaseException) -> bool:
    """429, 5xx, transport failures and cut downloads may succeed later; nothing else will.

    A download past its deadline is not retried: its time is up.
    """
    if isinstance(error, DownloadTimeoutError):
        return False
    return isinstance(error, (RateLimitError, ServerError, NetworkError, IncompleteDownloadError))
