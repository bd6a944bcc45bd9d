"""Webhook delivery: signed, at-least-once, with retries and the delivery faults.

One sender thread works through a queue ordered by due time, so events leave in
a known order (which is what ``--reorder-webhooks`` then deliberately breaks) and
a retry waits its backoff without blocking the event behind it for longer than
one attempt. A failed attempt (non-2xx or a connection error) is retried after
``base * 2**(attempt-1)`` seconds, up to ``--webhook-max-attempts`` attempts.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from django_aistemsplitter import contract
from django_aistemsplitter.client._transport import shared_ssl_context
from django_aistemsplitter.client.signing import sign_payload
from django_aistemsplitter.sandbox.config import SandboxConfig
from django_aistemsplitter.sandbox.store import Split, Stats, new_id

logger = logging.getLogger("django_aistemsplitter.sandbox")

USER_AGENT = "aistemsplitter-sandbox-webhooks"


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    url: str = field(compare=False)
    body: bytes = field(compare=False)
    label: str = field(compare=False)
    attempt: int = field(default=1, compare=False)


def build_event(split: Split, render: Callable[[Split], dict[str, Any]], thin: bool) -> bytes:
    """The event body: the seed's full event, or the API page's thin one."""
    if thin:
        event: dict[str, Any] = {
            "event": contract.EVENT_SPLIT_COMPLETED,
            "data": {"id": split.id, "status": split.status},
        }
    else:
        kind = (
            contract.EVENT_SPLIT_SUCCEEDED
            if split.status == contract.SUCCEEDED
            else contract.EVENT_SPLIT_FAILED
        )
        event = {
            "id": new_id("evt"),
            "type": kind,
            "created": int(time.time()),
            "data": render(split),
        }
    return json.dumps(event, separators=(",", ":")).encode()


class WebhookDispatcher:
    """Queues events for terminal splits and delivers them from one thread."""

    def __init__(
        self, config: SandboxConfig, stats: Stats, render: Callable[[Split], dict[str, Any]]
    ) -> None:
        self._config = config
        self._stats = stats
        self._render = render
        self._queue: list[_Delivery] = []
        self._held: list[tuple[str, bytes, str]] = []
        self._held_since: float | None = None
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="sandbox-webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    # --- intake --------------------------------------------------------------
    def split_finished(self, split: Split) -> None:
        """Called once per split when it reaches a terminal status."""
        if not split.webhook_url:
            return
        body = build_event(split, self._render, self._config.webhook_format == "thin")
        label = f"{split.id}:{split.status}"
        copies = 1 + self._config.duplicate_webhooks
        if self._config.drop_webhooks:
            for _ in range(copies):
                self._stats.count_webhook("dropped")
            return
        with self._cond:
            if self._config.reorder_webhooks:
                self._held.append((split.webhook_url, body, label))
                self._held_since = self._held_since or time.monotonic()
                if len(self._held) >= self._config.reorder_batch:
                    self._release_held()
            else:
                for _ in range(copies):
                    self._enqueue(split.webhook_url, body, label, time.monotonic())
            self._cond.notify_all()

    def _enqueue(self, url: str, body: bytes, label: str, due: float, attempt: int = 1) -> None:
        heapq.heappush(self._queue, _Delivery(due, next(self._seq), url, body, label, attempt))

    def _release_held(self) -> None:
        """Newest first, then every extra copy: late duplicates of already-seen events."""
        held = list(reversed(self._held))
        self._held.clear()
        self._held_since = None
        now = time.monotonic()
        for url, body, label in held:
            self._enqueue(url, body, label, now)
        for _ in range(self._config.duplicate_webhooks):
            for url, body, label in held:
                self._enqueue(url, body, label, now)

    # --- delivery ------------------------------------------------------------
    def _next_due(self) -> _Delivery | None:
        """Wait for the next due delivery (or a reorder flush); ``None`` when stopping."""
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                if (
                    self._held_since is not None
                    and now - self._held_since >= self._config.reorder_window
                ):
                    self._release_held()
                if self._queue and self._queue[0].due <= now:
                    return heapq.heappop(self._queue)
                waits = [self._queue[0].due - now] if self._queue else []
                if self._held_since is not None:
                    waits.append(self._held_since + self._config.reorder_window - now)
                self._cond.wait(timeout=max(0.01, min(waits)) if waits else None)
            return None

    def _loop(self) -> None:
        context = shared_ssl_context()
        with httpx.Client(timeout=self._config.webhook_timeout, verify=context) as http:
            while (delivery := self._next_due()) is not None:
                self._attempt(http, delivery)

    def _attempt(self, http: httpx.Client, delivery: _Delivery) -> None:
        self._stats.count_webhook("attempted")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            contract.SIGNATURE_HEADER: sign_payload(delivery.body, self._config.webhook_secret),
        }
        try:
            response = http.post(delivery.url, content=delivery.body, headers=headers)
            ok, outcome = response.is_success, f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            ok, outcome = False, type(exc).__name__
        logger.info("webhook %s attempt %d -> %s", delivery.label, delivery.attempt, outcome)
        if ok:
            self._stats.count_webhook("delivered")
            return
        self._stats.count_webhook("failed")
        if delivery.attempt >= self._config.webhook_max_attempts:
            self._stats.count_webhook("exhausted")
            return
        delay = self._config.webhook_retry_base * 2 ** (delivery.attempt - 1)
        with self._cond:
            self._enqueue(
                delivery.url,
                delivery.body,
                delivery.label,
                time.monotonic() + delay,
                delivery.attempt + 1,
            )
            self._cond.notify_all()
