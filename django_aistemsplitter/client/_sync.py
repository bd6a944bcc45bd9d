"""The blocking driver: performs the core's effects with ``httpx.Client``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, TypeVar

import httpx

from django_aistemsplitter.client import _effects as fx
from django_aistemsplitter.client._base import BaseClient

R = TypeVar("R")

__all__ = ["AiStemSplitter", "StemSplitter"]


class AiStemSplitter(BaseClient[httpx.Client]):
    """Blocking client of the AiStemSplitter API; usable without Django settings.

    ``api_key`` defaults to ``$AISTEMSPLITTER_API_KEY`` and ``webhook_secret`` (one
    or a list, for rotation) to ``$AISTEMSPLITTER_WEBHOOK_SECRET``. Failed calls
    that may succeed later (429, 5xx, network) are retried ``max_retries`` times
    with jittered backoff. Use it as a context manager, or call :meth:`close`.
    """

    def _new_http(self) -> httpx.Client:
        return httpx.Client()

    def _run(self, op: fx.Op[R]) -> R:
        stepper = fx.Stepper(op)
        for item in self._steps(stepper):
            raise RuntimeError(f"operation emitted {item!r}")  # pragma: no cover
        return stepper.result

    def _steps(self, stepper: fx.Stepper[Any]) -> Iterator[Any]:
        for effect in stepper:
            if isinstance(effect, fx.Emit):
                yield effect.value
            else:
                with stepper.performing():
                    stepper.reply(self._perform(effect))

    def _perform(self, effect: fx.Effect) -> fx.Reply | None:
        if isinstance(effect, fx.Sleep):
            time.sleep(effect.seconds)
            return None
        content = effect.body.chunks() if effect.body is not None else effect.content
        try:
            with self._http.stream(**effect.options(), content=content) as r:
                sink = effect.sink_for(r)
                for chunk in r.iter_bytes():
                    sink.write(chunk)
                return sink.response(r)
        except httpx.HTTPError as exc:
            return fx.TransportFailure.from_httpx(exc, effect.label)

    def close(self) -> None:
        """Release pooled connections (not those of an ``http_client`` you passed)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> AiStemSplitter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


StemSplitter = AiStemSplitter
