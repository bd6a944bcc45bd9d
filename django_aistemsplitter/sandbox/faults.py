"""Injected faults: the failures a real network and a real service produce.

Every random choice goes through one seeded generator, so ``--seed`` replays a run.
The decisions are kept apart from the HTTP code so the server just asks
"what goes wrong with this request?" and acts on the answer.
"""

from __future__ import annotations

import enum
import random
import threading

from django_aistemsplitter.sandbox.config import SandboxConfig


class ApiFault(enum.Enum):
    """What happens to one API call."""

    NONE = "none"
    RATE_LIMITED = "429"
    #: 500 before the request is handled: nothing changed on the server.
    ERROR_BEFORE = "500-before"
    #: 500 after the request was handled and stored: the response is "lost".
    ERROR_AFTER = "500-after"


class Faults:
    """Seeded dice for the fault switches."""

    def __init__(self, config: SandboxConfig) -> None:
        self._config = config
        self._random = random.Random(config.seed)
        self._lock = threading.Lock()

    def _roll(self) -> float:
        with self._lock:
            return self._random.random()

    def api_fault(self) -> ApiFault:
        """Half of the injected faults are 429s; the 500s split evenly before/after."""
        rate = self._config.fail_rate
        if rate <= 0:
            return ApiFault.NONE
        roll = self._roll()
        if roll >= rate:
            return ApiFault.NONE
        share = roll / rate
        if share < 0.5:
            return ApiFault.RATE_LIMITED
        return ApiFault.ERROR_BEFORE if share < 0.75 else ApiFault.ERROR_AFTER

    def truncate_at(self, size: int) -> int | None:
        """Bytes to send before cutting a download short, or ``None`` to send it all."""
        if (
            self._config.truncate_rate <= 0
            or size <= 1
            or self._roll() >= self._config.truncate_rate
        ):
            return None
        return max(1, min(size - 1, int(size * (0.1 + 0.8 * self._roll()))))

    def download_rate(self) -> int | None:
        """Bytes per second a stem file is streamed at (``--download-kbps``), or ``None``."""
        kbps = self._config.download_kbps
        return kbps * 1000 // 8 if kbps > 0 else None
