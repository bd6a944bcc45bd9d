"""The asyncio driver: performs the core's effects with ``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, TypeVar

import httpx

from django_aistemsplitter.client import _effects as fx
from django_aistemsplitter.client._base import BaseClient

R = TypeVar("R")

__all__ = ["AsyncAiStemSplitter", "AsyncStemSplitter"]


async def _stream(body: fx.FileBody) -> AsyncIterator[bytes]:
    # httpx.AsyncClient wants an async body; local reads are short enough to do inline.
    for chunk in body.chunks():
        yield chunk


class AsyncAiStemSplitter(BaseClient[httpx.AsyncClient]):
    """Asyncio twin of :class:`AiStemSplitter`: the same methods, as coroutines.

    ``iter_splits()`` and pages are consumed with ``async for``. Use ``async with``
    or ``await client.aclose()``. ``verify_webhook`` stays a plain method: it is
    pure computation with nothing to await.
    """

    asynchronous = True

    def _new_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient()

    async def _run(self, op: fx.Op[R]) -> R:
        stepper = fx.Stepper(op)
        async for item in self._steps(stepper):
            raise RuntimeError(f"operation emitted {item!r}")  # pragma: no cover
        return stepper.result

    async def _steps(self, stepper: fx.Stepper[Any]) -> AsyncIterator[Any]:
        for effect in stepper:
            if isinstance(effect, fx.Emit):
                yield effect.value
            else:
                with stepper.performing():
                    stepper.reply(await self._perform(effect))

    async def _perform(self, effect: fx.Effect) -> fx.Reply | None:
        if isinstance(effect, fx.Sleep):
            await asyncio.sleep(effect.seconds)
            return None
        content = _stream(effect.body) if effect.body is not None else effect.content
        try:
            async with self._http.stream(**effect.options(), content=content) as r:
                sink = effect.sink_for(r)
                async for chunk in r.aiter_bytes():
                    sink.write(chunk)
                return sink.response(r)
        except httpx.HTTPError as exc:
            return fx.TransportFailure.from_httpx(exc, effect.label)

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
