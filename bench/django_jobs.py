"""Helpers of the Django-side figures: settings, audio files, jobs, waiting on them.

Everything here runs in the bench process after :meth:`harness.Context.django`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile as sf

RATE = 44100
#: 16-bit stereo at 44.1 kHz.
BYTES_PER_SECOND = RATE * 2 * 2


def hosted_settings(sandbox: Any, **extra: Any) -> dict[str, Any]:
    """``AISTEMSPLITTER`` for the hosted backend against ``sandbox`` (plain http on loopback)."""
    return {
        "BACKEND": "hosted",
        "API_KEY": sandbox.api_key,
        "BASE_URL": sandbox.base_url,
        "WEBHOOK_SECRET": sandbox.webhook_secret,
        "ALLOW_HTTP_DOWNLOADS": True,
        "HTTP_TIMEOUT": 30.0,
        "DOWNLOAD_TIMEOUT": 900.0,
        "MAX_STEM_BYTES": 4 * 1024**3,
        "MAX_UPLOAD_BYTES": 1024**3,
        **extra,
    }


def write_wav(path: Path, seconds: float, seed: int = 0, chunk_seconds: float = 30.0) -> Path:
    """A 16-bit stereo WAV of quiet noise, written in chunks (any length, little memory).

    What ingest moves does not depend on what the audio sounds like, and noise is
    the cheapest audio to make.
    """
    rng = np.random.default_rng(seed)
    frames = round(seconds * RATE)
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(path, "w", RATE, 2, subtype="PCM_16", format="WAV") as out:
        done = 0
        while done < frames:
            n = min(frames - done, round(chunk_seconds * RATE))
            out.write((rng.standard_normal((n, 2)) * 0.05).astype(np.float32))
            done += n
    return path


def sandbox_stats(sandbox: Any) -> dict[str, Any]:
    response = httpx.get(
        f"{sandbox.root_url}/_sandbox/stats",
        headers={"Authorization": f"Bearer {sandbox.api_key}"},
        timeout=10,
    )
    response.raise_for_status()
    return dict(response.json()["data"])


def wait_terminal(job_ids: Iterable[Any], timeout: float, interval: float = 0.02) -> None:
    """Wait until every job is terminal (polling the database)."""
    from django_aistemsplitter.models import TERMINAL, SplitJob

    pending = {str(pk) for pk in job_ids}
    deadline = time.monotonic() + timeout
    while pending:
        done = SplitJob.objects.filter(pk__in=pending, status__in=TERMINAL).values_list(
            "pk", flat=True
        )
        pending -= {str(pk) for pk in done}
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} job(s) not finished after {timeout:g} s")
        time.sleep(interval)


def failures(job_ids: Iterable[Any]) -> list[str]:
    """``"<id>: <status> <code> <message>"`` for each job that did not succeed."""
    from django_aistemsplitter.models import SplitJob, SplitStatus

    rows = SplitJob.objects.filter(pk__in=[str(pk) for pk in job_ids]).exclude(
        status=SplitStatus.SUCCEEDED
    )
    return [f"{j.pk}: {j.status} {j.error_code} {j.error_message[:200]}" for j in rows]
