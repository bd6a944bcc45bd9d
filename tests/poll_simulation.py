"""What a ``wait_for_split`` costs, computed from the client's poll schedule without a server.

A test helper (and ``bench/wait_calls.py``'s prediction), not client code: it
replays the client's waiting loop on a clock of its own, so the number of GETs
a wait spends can be stated and checked against the sandbox's request counter.
"""

from __future__ import annotations

from django_aistemsplitter.client.polling import PollSchedule, estimate_remaining


def simulate_polls(
    job_seconds: float,
    schedule: PollSchedule | None = None,
    *,
    report_progress: bool = True,
    timeout: float | None = None,
) -> list[float]:
    """The times at which ``wait_for_split`` GETs a job lasting ``job_seconds``.

    Mirrors the loop in the client core (first GET at once, then the schedule),
    with a job whose progress grows linearly when ``report_progress``.
    """
    schedule = schedule or PollSchedule()
    now, polls, times = 0.0, 0, []
    samples: list[tuple[float, float]] = []
    while True:
        times.append(now)
        if now >= job_seconds:
            return times
        if report_progress:
            samples.append((now, now / job_seconds))
        delay = schedule.delay(polls, estimate_remaining(samples))
        if timeout is not None:
            if now >= timeout:
                return times
            delay = min(delay, timeout - now)
        now += delay
        polls += 1
