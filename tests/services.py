"""Which local services the tests can reach, and what to do when one is missing.

In CI (``CI=true``) a missing service is a failure: a green run must mean the
real parts were exercised. Elsewhere the test is skipped with a loud reason.
"""

from __future__ import annotations

import os
import socket
import warnings

import pytest

POSTGRES = (
    "PostgreSQL",
    os.environ.get("PGHOST", "127.0.0.1"),
    int(os.environ.get("PGPORT", "5432")),
)
REDIS = ("Redis", "127.0.0.1", 6379)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require(service: tuple[str, str, int]) -> None:
    """Fail (in CI) or skip loudly (elsewhere) when ``service`` does not answer."""
    name, host, port = service
    if port_open(host, port):
        return
    reason = f"{name} is not reachable on {host}:{port}"
    if in_ci():
        pytest.fail(f"{reason}; CI must run this test against the real service", pytrace=False)
    warnings.warn(f"SKIPPING: {reason}", stacklevel=2)
    pytest.skip(f"SKIPPED LOUDLY: {reason} (start it to run this test)")
