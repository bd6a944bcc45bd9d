"""Mapping HTTP answers to exception classes (no network)."""

from __future__ import annotations

import json

import pytest

from django_aistemsplitter import contract
from django_aistemsplitter.client import (
    APIError,
    AuthenticationError,
    IdempotencyConflictError,
    InsufficientCreditsError,
    InvalidRequestError,
    NetworkError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    UnsupportedAudioError,
)
from django_aistemsplitter.client.errors import (
    decode_data,
    error_from_response,
    is_retryable,
    parse_retry_after,
)


def envelope(code: str, message: str = "nope", details: object = None) -> bytes:
    error = {"code": code, "message": message, "details": details}
    return json.dumps({"success": False, "error": error}).encode()


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, InvalidRequestError),
        (401, AuthenticationError),
        (402, InsufficientCreditsError),
        (404, NotFoundError),
        (409, IdempotencyConflictError),
        (413, PayloadTooLargeError),
        (422, UnsupportedAudioError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
    ],
)
def test_status_picks_the_class(status: int, cls: type[APIError]) -> None:
    code = contract.ERROR_CODES.get(status, "INTERNAL_ERROR")
    headers = {contract.REQUEST_ID_HEADER: "req_1"}
    error = error_from_response(status, headers, envelope(code, "boom", {"field": "x"}))
    assert type(error) is cls
    assert error.status_code == status
    assert error.code == code
    assert error.message == "boom"
    assert error.details == {"field": "x"}
    assert error.request_id == "req_1"
    assert "req_1" in str(error) and str(status) in str(error)
    assert is_retryable(error) == (status == 429 or status >= 500)


def test_code_is_the_fallback_for_an_unlisted_status() -> None:
    error = error_from_response(403, {}, envelope("UNAUTHORIZED"))
    assert isinstance(error, AuthenticationError)
    other = error_from_response(418, {}, envelope("TEAPOT"))
    assert type(other) is APIError and other.code == "TEAPOT"


def test_non_json_error_body_still_gives_a_clear_error() -> None:
    error = error_from_response(502, {}, b"<html>Bad Gateway</html>")
    assert isinstance(error, ServerError)
    assert error.code == "INTERNAL_ERROR"
    assert "502" in error.message and "Bad Gateway" in error.message
    empty = error_from_response(404, {}, b"")
    assert isinstance(empty, NotFoundError) and "404" in empty.message


def test_rate_limit_carries_retry_after() -> None:
    error = error_from_response(429, {"Retry-After": "7"}, envelope("RATE_LIMITED"))
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 7.0
    assert error_from_response(429, {}, b"").retry_after is None  # type: ignore[attr-defined]


def test_secrets_echoed_by_a_server_are_redacted() -> None:
    body = envelope("UNAUTHORIZED", "bad key ast_test_secret123")
    error = error_from_response(401, {}, body, secrets=["ast_test_secret123"])
    assert "ast_test_secret123" not in str(error)
    assert "***" in error.message


def test_retry_after_parsing() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert parse_retry_after(date, now=1445412480 - 30) == pytest.approx(30.0)


def test_decode_data() -> None:
    assert decode_data(200, {}, b'{"success": true, "data": {"a": 1}}') == {"a": 1}
    with pytest.raises(APIError, match="envelope"):
        decode_data(200, {}, b"<html></html>")
    with pytest.raises(InvalidRequestError):
        decode_data(200, {}, envelope("INVALID_REQUEST"))


def test_transport_errors_are_retryable() -> None:
    assert is_retryable(NetworkError("down"))
    assert not is_retryable(NotFoundError("gone"))
