"""How many GETs does ``wait_for_split`` spend on a two-minute job?

Starts a sandbox whose splits take ``--seconds`` (default 120), submits one,
waits with the client and reads the sandbox's request counter. The published
SDK polls every 2 s, i.e. ``seconds / 2`` GETs. Run from the repository root:

    .venv/bin/python bench/wait_calls.py [--seconds 120]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django_aistemsplitter.client import AiStemSplitter
from django_aistemsplitter.client.polling import simulate_polls
from tests.conftest import make_wav
from tests.sandbox_process import start_sandbox

SDK_INTERVAL = 2.0
GET_SPLIT = "GET /audio/splits/{id}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="processing time of the job")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "sandbox").mkdir()
        sandbox = start_sandbox(root / "sandbox", processing_seconds=args.seconds, quiet=True)
        try:
            with AiStemSplitter(sandbox.api_key, base_url=sandbox.base_url) as client:
                split = client.submit(input=client.upload_file(make_wav(root / "song.wav")))
                started = time.monotonic()
                done = client.wait_for_split(split.id, timeout=args.seconds * 3)
                waited = time.monotonic() - started
            stats = httpx.get(
                f"{sandbox.root_url}/_sandbox/stats",
                headers={"Authorization": f"Bearer {sandbox.api_key}"},
            ).json()
        finally:
            sandbox.stop()
    gets = stats.get("data", stats)["requests"].get(GET_SPLIT, 0)
    sdk = int(args.seconds // SDK_INTERVAL)
    print(f"job of {args.seconds:g}s finished as {done.status!r}, seen after {waited:.1f}s")
    print(f"wait_for_split GETs: {gets}  (schedule predicts {len(simulate_polls(args.seconds))})")
    print(f"published SDK (every {SDK_INTERVAL:g}s): {sdk} GETs  -> {sdk / max(gets, 1):.1f}x more")
    return 0


if __name__ == "__main__":
    sys.exit(main())
