"""``Retry-After``: parsed defensively, capped in one place, honoured by the retry loop."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timezone

import httpx
import pytest

from django_aistemsplitter.client import RateLimitError, RetryPolicy, cap_retry_after
from django_aistemsplitter.client.errors import error_from_response, parse_retry_after
from tests.client.conftest import Api

NOW = 1_700_000_000.0
IN_2099 = datetime(2099, 10, 21, 7, 28, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1e20", 1e20),  # finite: returned as is, capped by the caller
        ("9" * 400, None),  # float() says inf
        ("inf", None),
        ("-inf", None),
        ("Infinity", None),
        ("nan", None),
        ("-30", 0.0),
        ("  12.5 ", 12.5),
        ("Wed, 21 Oct 2099 07:28:00 GMT", IN_2099 - NOW),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past
        ("Wed, 21 Oct 99999 07:28:00 GMT", None),
        ("Wed, 99 Foo 2015 99:99:99 GMT", None),
        ("\x00", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after_never_raises(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(None, None), (float("nan"), None), (-5.0, 0.0), (30.0, 30.0), (1e20, 60.0)],
)
def test_cap_retry_after(seconds: float | None, expected: float | None) -> None:
    assert cap_retry_after(seconds, 60.0) == expected
    assert cap_retry_after(float("inf"), 60.0) == 60.0


def test_the_retry_policy_caps_a_servers_hint() -> None:
    rng = random.Random(1)
    policy = RetryPolicy(max_retry_after=45.0)
    for hint, expected in [(1e20, 45.0), (3.0, 3.0), (0.0, 0.0)]:
        assert policy.delay(0, hint, rng) == expected
    assert 0.0 <= policy.delay(3, None, rng) <= policy.cap  # no hint: jittered backoff


def test_a_429_keeps_the_uncapped_hint_for_its_caller() -> None:
    error = error_from_response(429, {"Retry-After": "86400"}, b"")
    assert isinstance(error, RateLimitError) and error.retry_after == 86400.0
    assert cap_retry_after(error.retry_after, 300.0) == 300.0


async def test_the_client_waits_no_longer_than_max_retry_after(
    mock_api: Callable[..., Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []

    async def fake_async_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("django_aistemsplitter.client._sync.time.sleep", slept.append)
    monkeypatch.setattr("django_aistemsplitter.client._async.asyncio.sleep", fake_async_sleep)
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "1e20"}),
            httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}),
            httpx.Response(200, json={"success": True, "data": {"balance": 5, "unit": "seconds"}}),
        ]
    )
    api = mock_api(lambda request: next(answers), max_retry_after=2.5)
    assert (await api.get_credits()).balance == 5
    assert slept == [2.5, 2.5]
