"""What the direct-upload tests share: a ticket for a file, sending a ticket's bytes as
a client would, a 200 MB WAV written without holding it, and the memory a step costs.

The fixtures are named with ``name=`` so that a test module imports them by their
function names (``alice_fixture``...) and its tests' ``alice`` parameters do not
shadow the import.
"""

from __future__ import annotations

import resource
import struct
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from rest_framework.test import APIClient

from django_aistemsplitter import tickets
from django_aistemsplitter.models import SplitJob
from tests.conftest import make_wav

MiB = 1024**2
#: The default MAX_UPLOAD_BYTES, exactly: the largest upload the app accepts.
BIG_BYTES = 200 * MiB
RATE, CHANNELS, WIDTH = 44100, 2, 2
#: What a ticket answer holds, from the API and the admin's ticket view alike.
TICKET_KEYS = frozenset(
    {
        "id",
        "destination",
        "url",
        "method",
        "headers",
        "fields",
        "file_field",
        "expires_at",
        "max_bytes",
    }
)
#: The stems of a finished job, sorted: the sandbox's and the passthrough engine's.
STEMS = ["bass", "drums", "other", "vocals"]


@pytest.fixture(name="alice")
def alice_fixture(django_user_model: Any) -> Any:
    """The user who uploads."""
    return django_user_model.objects.create_user("alice", password="x")


@pytest.fixture(name="song")
def song_fixture(tmp_path: Path) -> Path:
    """A 2 s WAV whose name needs cleaning for storage: ``my song.wav``."""
    return make_wav(tmp_path / "my song.wav", seconds=2.0)


@pytest.fixture(name="big_wav", scope="module")
def big_wav_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A WAV of exactly :data:`BIG_BYTES`, written once for the test module."""
    path = tmp_path_factory.mktemp("big") / "long song.wav"
    write_wav_of_size(path, BIG_BYTES)
    return path


def terminal(job: SplitJob) -> bool:
    """Whether ``job`` has ended, read afresh: what to ``wait_for`` on another process."""
    job.refresh_from_db()
    return job.is_terminal


def issue(owner: Any, path: Path, size: int | None = None) -> tickets.IssuedTicket:
    """A ticket for ``path`` (its real size unless ``size`` says otherwise)."""
    return tickets.open_ticket(
        owner=owner,
        filename=path.name,
        size=path.stat().st_size if size is None else size,
        content_type="audio/wav",
    )


def ask_ticket(user: Any, path: Path) -> dict[str, Any]:
    """``POST /api/splits/uploads/`` as ``user``, for ``path``: the ticket's JSON.

    Needs the REST API in the URLconf (``pytest.mark.urls("tests.api.urls")``).
    """
    api = APIClient()
    api.force_authenticate(user)
    response = api.post(
        "/api/splits/uploads/",
        {"filename": path.name, "size": path.stat().st_size, "content_type": "audio/wav"},
        format="json",
    )
    assert response.status_code == 201, response.content
    return dict(response.json())


def split_upload(user: Any, ticket_id: str) -> SplitJob:
    """``POST /api/splits/`` with ``upload=<ticket id>`` as ``user``: the job it made."""
    api = APIClient()
    api.force_authenticate(user)
    response = api.post("/api/splits/", {"upload": ticket_id}, format="json")
    assert response.status_code == 201, response.content
    return SplitJob.objects.get(pk=response.json()["id"])


def send_upload(
    issued: dict[str, Any], path: Path, content_type: str = "audio/wav"
) -> httpx.Response:
    """Send ``path`` the way ``IssuedTicket.as_json()`` says, streaming it from disk.

    ``POST``: a multipart form of ``fields`` in order, then the file as
    ``file_field``; ``PUT``: the file as the body. ``headers`` go with either.
    """
    headers = dict(issued["headers"])
    with path.open("rb") as handle, httpx.Client(timeout=300) as http:
        if issued["method"] == "POST":
            return http.post(
                issued["url"],
                data=dict(issued["fields"]),
                files={issued["file_field"]: (path.name, handle, content_type)},
                headers=headers,
            )
        assert issued["method"] == "PUT", issued
        headers["Content-Length"] = str(path.stat().st_size)
        return http.put(issued["url"], content=handle, headers=headers)


def write_wav_of_size(path: Path, total_bytes: int) -> float:
    """A 44.1 kHz stereo 16-bit WAV of exactly ``total_bytes``, written in 1 s blocks.

    The signal is a quiet tone over a little noise (cheap to make, not silence
    a codec could treat specially). Returns the duration in seconds.
    """
    data_bytes = total_bytes - 44
    frame = CHANNELS * WIDTH
    assert data_bytes > 0 and data_bytes % frame == 0, "the size must fit whole frames"
    rng = np.random.default_rng(13)
    t = np.arange(RATE) / RATE
    tone = 0.2 * np.sin(2 * np.pi * 220 * t)
    block = np.stack([tone, np.roll(tone, 50)], axis=1) + 0.01 * rng.standard_normal((RATE, 2))
    pcm = (np.clip(block, -1, 1) * 32767).astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, CHANNELS, RATE, RATE * frame, frame, 16)
    header += b"data" + struct.pack("<I", data_bytes)
    with path.open("wb") as out:
        out.write(header)
        left = data_bytes
        while left:
            piece = pcm[: min(len(pcm), left)]
            out.write(piece)
            left -= len(piece)
    return data_bytes / frame / RATE


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


@dataclass
class Cost:
    """What one step cost the test process."""

    seconds: float
    python_peak: int  #: bytes, tracemalloc's peak
    rss_peak_delta: int  #: bytes, the process's resident peak over its size before

    def __str__(self) -> str:
        return (
            f"{self.seconds:.2f} s, Python peak {self.python_peak / MiB:.1f} MiB, "
            f"RSS peak +{self.rss_peak_delta / MiB:.1f} MiB"
        )


def measure(action: Callable[[], Any]) -> tuple[Any, Cost]:
    """Run ``action``; its result and its cost (wall time, Python and resident peaks).

    The resident peak is reset first (``/proc/self/clear_refs``), so its delta is
    this step's own; where that file cannot be written the lifetime peak is used.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before = _rss_kib("VmRSS")
    except OSError:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = action()
        seconds = time.monotonic() - started
        python_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    peak = _rss_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return result, Cost(seconds, python_peak, max(0, peak - before) * 1024)
