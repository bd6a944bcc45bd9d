"""Figures of the API client: what waiting for a split costs in calls."""

from __future__ import annotations

import wait_calls
from harness import Context, Result, figure


@figure("poll_calls_120s", "GETs", "<= 12", order=1)
def poll_calls_120s(ctx: Context) -> Result:
    """Runs in the background of the whole run: the job really takes 120 s."""
    result = wait_calls.measure(120.0)
    return Result(
        result.ours,
        f"published SDK polling every {wait_calls.SDK_INTERVAL:g} s: {result.sdk} GETs",
        f"wait_for_split on a sandbox split of 120 s (ended {result.status}, seen after "
        f"{result.waited:.0f} s); its schedule predicts {result.predicted}",
        met=result.ours <= 12,
    )
