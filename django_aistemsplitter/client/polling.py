"""Pure timing policies: how long to wait between polls and between retries.

They are plain functions of their inputs (the clock and the random source are
arguments), so the number of requests a wait costs can be computed and tested
without a server or a real clock. ``Retry-After`` is read and capped here too:
:func:`parse_retry_after` turns the header into seconds and :func:`cap_retry_after`
bounds them; the Django tasks use the same two functions.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "PollSchedule",
    "RetryPolicy",
    "cap_retry_after",
    "estimate_remaining",
    "parse_retry_after",
]

#: Default cap on a server's ``Retry-After``, in seconds.
DEFAULT_MAX_RETRY_AFTER = 60.0


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date.

    Whatever a server sends, the answer is ``None`` (no usable hint: junk,
    ``NaN``, infinity, a date the calendar cannot hold) or a finite number ``>= 0``
    (a past date or a negative delay is ``0``). It is *not* capped: ``1e20`` or a
    date in 2099 come back as they are; pass the result to :func:`cap_retry_after`.
    """
    if not value or not isinstance(value, str):
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
            seconds = parsed.timestamp() - (time.time() if now is None else now)
        except (TypeError, ValueError, OverflowError, IndexError, OSError):
            return None
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def cap_retry_after(seconds: float | None, cap: float) -> float | None:
    """``seconds`` bounded to ``[0, cap]``; ``None`` and ``NaN`` stay "no hint" (``None``).

    The one place where a server's wish meets our limit: the client's retry loop
    and the Django tasks' backoff both call it, so a hostile or broken header
    cannot park a worker for hours (or crash a timer with ``OverflowError``).
    """
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(0.0, seconds), max(0.0, cap))


@dataclass(frozen=True)
class PollSchedule:
    """Geometric backoff for ``wait_for_split``: 2 s, 3 s, 4.5 s ... capped at 30 s.

    Separation takes from seconds to minutes, so a fixed short interval wastes
    requests (the published SDK polls every 2 s: 60 GETs for a 2-minute job)
    while a fixed long one adds latency to short jobs. Growing the gap keeps
    short jobs snappy and long jobs cheap: a 120 s job costs about ten GETs.
    """

    initial: float = 2.0
    factor: float = 1.5
    cap: float = 30.0
    #: Aim a little past the projected finish: an early poll costs a whole extra GET.
    overshoot: float = 1.1
    margin: float = 0.5

    def base_delay(self, polls_done: int) -> float:
        """The backoff delay after ``polls_done`` polls, ignoring progress."""
        if polls_done > 60:  # factor ** n overflows long after the cap is reached
            return self.cap
        return min(self.cap, self.initial * self.factor**polls_done)

    def delay(self, polls_done: int, remaining: float | None = None) -> float:
        """Next delay; a progress-based estimate of the ``remaining`` time may shorten it.

        The estimate never lengthens the wait beyond the backoff and never makes
        it shorter than ``initial``, so a wrong estimate costs at most a little
        latency or a few polls, never a busy loop.
        """
        base = self.base_delay(polls_done)
        if remaining is None or not math.isfinite(remaining) or remaining < 0:
            return base
        return min(base, max(self.initial, remaining * self.overshoot + self.margin))


def estimate_remaining(samples: Sequence[tuple[float, float]]) -> float | None:
    """Seconds left, from (time, progress) observations, assuming a steady rate.

    Uses the first and last samples with progress above zero; ``None`` when
    there is not yet enough signal (one sample, or progress not moving).
    """
    moving = [(t, p) for t, p in samples if p > 0]
    if len(moving) < 2:
        return None
    (t0, p0), (t1, p1) = moving[0], moving[-1]
    if t1 <= t0 or p1 <= p0:
        return None
    rate = (p1 - p0) / (t1 - t0)
    return max(0.0, (1.0 - min(p1, 1.0)) / rate)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter for retryable failures.

    Full jitter (a uniform draw up to the exponential bound) spreads the retries
    of many clients hit by the same outage, so they do not return in lockstep.
    A server's ``Retry-After`` wins over the draw, capped so that a hostile or
    broken header cannot park a worker for hours.
    """

    max_retries: int = 4
    base: float = 0.5
    cap: float = 8.0
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to sleep before retry number ``attempt + 1`` (``attempt`` from 0)."""
        hinted = cap_retry_after(retry_after, self.max_retry_after)
        if hinted is not None:
            return hinted
        bound = min(self.cap, self.base * 2 ** min(attempt, 30))
        return rng.uniform(0.0, bound)
