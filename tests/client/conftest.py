"""Fixtures that run one test body against both the blocking and the asyncio client.

Test bodies are ``async def`` and call ``await api.method(...)``: :class:`Api`
forwards to the real client and awaits only what the async client returns, so
the blocking client is exercised through its own blocking code path.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from django_aistemsplitter.client import AiStemSplitter, AsyncAiStemSplitter
from tests.sandbox_process import SandboxProcess

MODES = ("sync", "async")


class Api:
    """A client of either kind behind one awaitable surface."""

    def __init__(self, client: AiStemSplitter | AsyncAiStemSplitter) -> None:
        self.client = client
        self.is_async = isinstance(client, AsyncAiStemSplitter)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if not callable(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result

        return call

    async def collect(self, items: Iterator[Any] | AsyncIterator[Any], limit: int = 10_000) -> list:
        """Drain a sync or async iterator (at most ``limit`` items, against runaway loops)."""
        out: list[Any] = []
        if isinstance(items, AsyncIterator):
            async for item in items:
                out.append(item)
                if len(out) >= limit:
                    break
        else:
            for item in items:
                out.append(item)
                if len(out) >= limit:
                    break
        return out

    async def walk(self, page: Any) -> list:
        """Every item from ``page`` on, the way each client's users would write it."""
        return await self.collect(page.__aiter__() if self.is_async else page.iter_all())

    async def close(self) -> None:
        if isinstance(self.client, AsyncAiStemSplitter):
            await self.client.aclose()
        else:
            self.client.close()


def stats(sandbox: SandboxProcess) -> dict[str, Any]:
    """The sandbox's request counters (``GET /_sandbox/stats``)."""
    r = httpx.get(
        f"{sandbox.root_url}/_sandbox/stats",
        headers={"Authorization": f"Bearer {sandbox.api_key}"},
        timeout=10,
    )
    r.raise_for_status()
    body = r.json()
    return body.get("data", body)


def request_count(sandbox: SandboxProcess, route: str) -> int:
    return int(stats(sandbox)["requests"].get(route, 0))


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_api(mode: str) -> AsyncIterator[Callable[..., Api]]:
    """Build clients of the test's mode; ``sandbox=`` fills base URL and credentials."""
    made: list[Api] = []

    def make(sandbox: SandboxProcess | None = None, **kwargs: Any) -> Api:
        if sandbox is not None:
            kwargs.setdefault("api_key", sandbox.api_key)
            kwargs.setdefault("base_url", sandbox.base_url)
            kwargs.setdefault("webhook_secret", sandbox.webhook_secret)
        cls = AsyncAiStemSplitter if mode == "async" else AiStemSplitter
        api = Api(cls(**kwargs))
        made.append(api)
        return api

    yield make
    for api in made:
        await api.close()


@pytest.fixture
def api(make_api: Callable[..., Api], sandbox: SandboxProcess) -> Api:
    """A client of the test's mode on the shared, fault-free sandbox."""
    return make_api(sandbox)


@pytest.fixture
def mock_api(make_api: Callable[..., Api], mode: str) -> Callable[..., Api]:
    """A client of the test's mode whose HTTP goes to ``handler`` (an ``httpx.MockTransport``).

    For faults the real sandbox cannot produce (hostile stem names, a split that
    fails, a body shorter than its Content-Length).
    """

    def make(handler: Callable[[httpx.Request], Any], **kwargs: Any) -> Api:
        transport = httpx.MockTransport(handler)
        http = (
            httpx.AsyncClient(transport=transport)
            if mode == "async"
            else httpx.Client(transport=transport)
        )
        kwargs.setdefault("api_key", "ast_test_mock")
        kwargs.setdefault("base_url", "https://api.test/v1")
        return make_api(http_client=http, **kwargs)

    return make
