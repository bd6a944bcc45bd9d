"""How many GETs does ``wait_for_split`` spend on a two-minute job, next to the published SDK?

Starts a sandbox whose splits take ``--seconds`` (default 120) and submits two
splits at once: one waited for with our client's ``wait_for_split``, the other
polled the way the published SDK does it (a GET every 2 s until the split is
terminal), in a thread alongside. Our count is the sandbox's request counter
minus the SDK loop's own GETs. Run from the repository root:

    .venv/bin/python bench/wait_calls.py [--seconds 120]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django_aistemsplitter.client import AiStemSplitter
from tests.conftest import make_wav
from tests.poll_simulation import simulate_polls
from tests.sandbox_process import start_sandbox

SDK_INTERVAL = 2.0
GET_SPLIT = "GET /audio/splits/{id}"


@dataclass
class WaitCalls:
    seconds: float
    ours: int
    sdk: int
    predicted: int
    status: str
    waited: float


def sdk_poll(client: AiStemSplitter, split_id: str, timeout: float) -> int:
    """The published SDK's wait: GET every ``SDK_INTERVAL`` seconds; returns the GETs made."""
    calls = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        calls += 1
        if client.get_split(split_id).is_terminal:
            break
        time.sleep(SDK_INTERVAL)
    return calls


def measure(seconds: float) -> WaitCalls:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "sandbox").mkdir()
        sandbox = start_sandbox(root / "sandbox", processing_seconds=seconds, quiet=True)
        try:
            with AiStemSplitter(sandbox.api_key, base_url=sandbox.base_url) as client:
                audio = client.upload_file(make_wav(root / "song.wav"))
                ours = client.submit(input=audio)
                theirs = client.submit(input=audio)
                sdk_calls: list[int] = []
                sdk = threading.Thread(
                    target=lambda: sdk_calls.append(sdk_poll(client, theirs.id, seconds * 3))
                )
                sdk.start()
                started = time.monotonic()
                done = client.wait_for_split(ours.id, timeout=seconds * 3)
                waited = time.monotonic() - started
                sdk.join()
            stats = httpx.get(
                f"{sandbox.root_url}/_sandbox/stats",
                headers={"Authorization": f"Bearer {sandbox.api_key}"},
            ).json()
        finally:
            sandbox.stop()
    total = stats.get("data", stats)["requests"].get(GET_SPLIT, 0)
    return WaitCalls(
        seconds,
        total - sdk_calls[0],
        sdk_calls[0],
        len(simulate_polls(seconds)),
        str(done.status),
        waited,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="processing time of the job")
    args = parser.parse_args()
    result = measure(args.seconds)
    print(
        f"job of {args.seconds:g}s finished as {result.status!r}, seen after {result.waited:.1f}s"
    )
    print(f"wait_for_split GETs: {result.ours}  (schedule predicts {result.predicted})")
    print(
        f"published SDK (every {SDK_INTERVAL:g}s), same run: {result.sdk} GETs"
        f"  -> {result.sdk / max(result.ours, 1):.1f}x more"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
