"""Errors the sandbox answers with, and the envelope they become.

Handlers raise :class:`ApiError`; the server turns it into the contract's error
envelope, so no handler builds an error body itself.
"""

from __future__ import annotations

from typing import Any

from django_aistemsplitter import contract

# Statuses the contract does not name (our choice, sandbox only).
EXTRA_ERROR_CODES: dict[int, str] = {
    403: "FORBIDDEN",
    405: "METHOD_NOT_ALLOWED",
}
URL_EXPIRED = "URL_EXPIRED"
SIGNATURE_INVALID = "SIGNATURE_INVALID"
#: ``split.error.code`` when the engine fails on a split.
SEPARATION_FAILED = "SEPARATION_FAILED"


def code_for(status: int) -> str:
    return contract.ERROR_CODES.get(status) or EXTRA_ERROR_CODES.get(status, "INTERNAL_ERROR")


class ApiError(Exception):
    """An error response: status, message, optional code override and details."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or code_for(status)
        self.details = details
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        return {
            "success": False,
            "error": {"code": self.code, "message": self.message, "details": self.details},
        }


def success(data: Any) -> dict[str, Any]:
    return {"success": True, "data": data}
