"""The blocking driver: performs the core's effects with ``httpx.Client``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from django_aistemsplitter.client import _effects as fx
from django_aistemsplitter.client._base import BaseClient
from django_aistemsplitter.client._transport import BulkReadTransport
from django_aistemsplitter.client.downloads import Downloaded, DownloadPolicy, save_url

R = TypeVar("R")

__all__ = ["AiStemSplitter", "StemSplitter", "download_file"]


def perform(http: httpx.Client, effect: fx.Effect) -> fx.Reply | None:
    """Do what one effect asks, blocking; transport failures become a reply."""
    if isinstance(effect, fx.Sleep):
        time.sleep(effect.seconds)
        return None
    content = effect.body.chunks() if effect.body is not None else effect.content
    try:
        with http.stream(**effect.options(), content=content) as r:
            sink = effect.sink_for(r)
            for chunk in r.iter_bytes():
                sink.write(chunk)
            return sink.response(r)
    except httpx.HTTPError as exc:
        return fx.TransportFailure.from_httpx(exc, effect.label)


def steps(http: httpx.Client, stepper: fx.Stepper[Any]) -> Iterator[Any]:
    """Run a walk, yielding what it emits."""
    for effect in stepper:
        if isinstance(effect, fx.Emit):
            yield effect.value
        else:
            with stepper.performing():
                stepper.reply(perform(http, effect))


def run(http: httpx.Client, op: fx.Op[R]) -> R:
    """Run an operation to its result."""
    stepper = fx.Stepper(op)
    for item in steps(http, stepper):
        raise RuntimeError(f"operation emitted {item!r}")  # pragma: no cover
    return stepper.result


def download_file(
    url: str,
    path: str | os.PathLike[str],
    *,
    policy: DownloadPolicy | None = None,
    http: httpx.Client | None = None,
    timeout: float | None = 30.0,
    headers: Mapping[str, str] | None = None,
) -> Downloaded:
    """Download ``url`` to ``path`` under ``policy``, blocking; returns size and SHA-256.

    The same policy and verification as ``download_stems``, for any URL and
    without an API key: hosts, scheme, redirects (followed by hand, each hop
    checked), size, completeness and the overall deadline. Nothing is retried:
    an :class:`IncompleteDownloadError` is worth another call,
    a :class:`DownloadRefusedError` is not. ``http`` is an ``httpx.Client`` to
    reuse (it is not closed here); ``timeout`` is the per-read timeout.
    """
    client = http if http is not None else httpx.Client(transport=BulkReadTransport())
    try:
        return run(
            client,
            save_url(
                url, path, policy=policy or DownloadPolicy(), timeout=timeout, headers=headers
            ),
        )
    finally:
        if http is None:
            client.close()


class AiStemSplitter(BaseClient[httpx.Client]):
    """Blocking client of the AiStemSplitter API; usable without Django settings.

    ``api_key`` defaults to ``$AISTEMSPLITTER_API_KEY`` and ``webhook_secret`` (one
    or a list, for rotation) to ``$AISTEMSPLITTER_WEBHOOK_SECRET``. Failed calls
    that may succeed later (429, 5xx, network) are retried ``max_retries`` times
    with jittered backoff. Use it as a context manager, or call :meth:`close`.
    """

    def _new_http(self) -> httpx.Client:
        return httpx.Client(transport=BulkReadTransport())

    def _run(self, op: fx.Op[R]) -> R:
        return run(self._http, op)

    def _steps(self, stepper: fx.Stepper[Any]) -> Iterator[Any]:
        return steps(self._http, stepper)

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
