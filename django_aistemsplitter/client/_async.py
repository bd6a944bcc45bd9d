"""The asyncio driver: performs the core's effects with ``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from django_aistemsplitter.client import _effects as fx
from django_aistemsplitter.client._base import BaseClient
from django_aistemsplitter.client._transport import shared_ssl_context
from django_aistemsplitter.client.downloads import Downloaded, DownloadPolicy, save_url

R = TypeVar("R")

__all__ = ["AsyncAiStemSplitter", "AsyncStemSplitter", "adownload_file"]


async def _stream(body: fx.FileBody) -> AsyncIterator[bytes]:
    # httpx.AsyncClient wants an async body; local reads are short enough to do inline.
    for chunk in body.chunks():
        yield chunk


async def perform(http: httpx.AsyncClient, effect: fx.Effect) -> fx.Reply | None:
    """Do what one effect asks, asynchronously; transport failures become a reply."""
    if isinstance(effect, fx.Sleep):
        await asyncio.sleep(effect.seconds)
        return None
    content = _stream(effect.body) if effect.body is not None else effect.content
    try:
        async with http.stream(**effect.options(), content=content) as r:
            sink = effect.sink_for(r)
            async for chunk in r.aiter_bytes():
                sink.write(chunk)
            return sink.response(r)
    except httpx.HTTPError as exc:
        return fx.TransportFailure.from_httpx(exc, effect.label)


async def steps(http: httpx.AsyncClient, stepper: fx.Stepper[Any]) -> AsyncIterator[Any]:
    """Run a walk, yielding what it emits."""
    for effect in stepper:
        if isinstance(effect, fx.Emit):
            yield effect.value
        else:
            with stepper.performing():
                stepper.reply(await perform(http, effect))


async def run(http: httpx.AsyncClient, op: fx.Op[R]) -> R:
    """Run an operation to its result."""
    stepper = fx.Stepper(op)
    async for item in steps(http, stepper):
        raise RuntimeError(f"operation emitted {item!r}")  # pragma: no cover
    return stepper.result


async def adownload_file(
    url: str,
    path: str | os.PathLike[str],
    *,
    policy: DownloadPolicy | None = None,
    http: httpx.AsyncClient | None = None,
    timeout: float | None = 30.0,
    headers: Mapping[str, str] | None = None,
) -> Downloaded:
    """Asyncio twin of :func:`~django_aistemsplitter.client.download_file`."""
    client = http if http is not None else httpx.AsyncClient(verify=shared_ssl_context())
    try:
        return await run(
            client,
            save_url(
                url, path, policy=policy or DownloadPolicy(), timeout=timeout, headers=headers
            ),
        )
    finally:
        if http is None:
            await client.aclose()


class AsyncAiStemSplitter(BaseClient[httpx.AsyncClient]):
    """Asyncio twin of :class:`AiStemSplitter`: the same methods, as coroutines.

    ``iter_splits()`` and pages are consumed with ``async for``. Use ``async with``
    or ``await client.aclose()``. ``verify_webhook`` stays a plain method: it is
    pure computation with nothing to await.
    """

    asynchronous = True

    def _new_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(verify=shared_ssl_context())

    async def _run(self, op: fx.Op[R]) -> R:
        return await run(self._http, op)

    def _steps(self, stepper: fx.Stepper[Any]) -> AsyncIterator[Any]:
        return steps(self._http, stepper)

    async def aclose(self) -> None:
        """Release pooled connections (not those of an ``http_client`` you passed)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncAiStemSplitter:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


AsyncStemSplitter = AsyncAiStemSplitter
