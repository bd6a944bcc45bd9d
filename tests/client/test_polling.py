"""The pure timing policies: poll schedule, progress estimate, retry backoff."""

from __future__ import annotations

import itertools
import random

import pytest

from django_aistemsplitter.client.polling import (
    PollSchedule,
    RetryPolicy,
    estimate_remaining,
)
from tests.poll_simulation import simulate_polls

PUBLISHED_SDK_POLLS_FOR_120S = 120 // 2  # the published SDK polls every 2 s


def test_base_delays_grow_geometrically_and_cap() -> None:
    schedule = PollSchedule()
    delays = [schedule.base_delay(n) for n in range(10)]
    assert delays[:4] == pytest.approx([2.0, 3.0, 4.5, 6.75])
    assert delays[-1] == 30.0
    assert all(a <= b for a, b in itertools.pairwise(delays))
    assert schedule.base_delay(10_000) == 30.0  # no overflow far past the cap


@pytest.mark.parametrize("report_progress", [False, True])
def test_a_two_minute_job_costs_at_most_twelve_polls(report_progress: bool) -> None:
    times = simulate_polls(120.0, report_progress=report_progress)
    assert times[0] == 0.0
    assert times[-1] >= 120.0  # the last poll sees the job finished
    assert len(times) <= 12
    assert len(times) < PUBLISHED_SDK_POLLS_FOR_120S / 5


def test_progress_brings_the_last_poll_closer_to_the_finish() -> None:
    plain = simulate_polls(120.0, report_progress=False)
    guided = simulate_polls(120.0, report_progress=True)
    assert guided[-1] - 120.0 < plain[-1] - 120.0


def test_short_jobs_are_seen_quickly() -> None:
    times = simulate_polls(6.0)
    assert times[-1] - 6.0 <= 3.0
    assert len(times) <= 5


def test_simulation_stops_at_the_timeout() -> None:
    times = simulate_polls(500.0, timeout=60.0)
    assert times[-1] == pytest.approx(60.0)
    assert all(t <= 60.0 for t in times)


def test_delay_is_shortened_but_never_below_initial_or_above_backoff() -> None:
    schedule = PollSchedule()
    assert schedule.delay(8, remaining=None) == 30.0
    assert schedule.delay(8, remaining=5.0) == pytest.approx(5.0 * 1.1 + 0.5)
    assert schedule.delay(8, remaining=0.0) == 2.0
    assert schedule.delay(0, remaining=100.0) == 2.0
    assert schedule.delay(3, remaining=float("nan")) == schedule.base_delay(3)
    assert schedule.delay(3, remaining=-1.0) == schedule.base_delay(3)


def test_estimate_remaining_from_steady_progress() -> None:
    assert estimate_remaining([]) is None
    assert estimate_remaining([(0.0, 0.0), (2.0, 0.2)]) is None  # one moving sample
    assert estimate_remaining([(2.0, 0.2), (4.0, 0.4)]) == pytest.approx(6.0)
    assert estimate_remaining([(2.0, 0.4), (4.0, 0.4)]) is None  # stalled
    assert estimate_remaining([(2.0, 0.5), (4.0, 1.2)]) == 0.0


def test_retry_after_wins_and_is_capped() -> None:
    policy = RetryPolicy(max_retry_after=60.0)
    rng = random.Random(1)
    assert policy.delay(0, 7.0, rng) == 7.0
    assert policy.delay(0, 0.0, rng) == 0.0
    assert policy.delay(5, 3600.0, rng) == 60.0


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    policy = RetryPolicy(base=0.5, cap=8.0)
    rng = random.Random(42)
    for attempt, bound in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (40, 8.0)]:
        draws = [policy.delay(attempt, None, rng) for _ in range(200)]
        assert all(0.0 <= d <= bound for d in draws)
        assert max(draws) > bound * 0.8  # spread over the whole range, not fixed
        assert min(draws) < bound * 0.2
