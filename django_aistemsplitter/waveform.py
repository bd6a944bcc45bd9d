"""Waveform pictures: peak values of an audio file drawn as a small SVG, server-side.

The file is read block by block with ``soundfile`` (one block per picture column)
through :func:`~django_aistemsplitter.filestreams.open_stored`, so memory stays
constant whatever the length of the audio and whatever the storage.

A picture is computed once per stem: soon after the stem is stored, by a task
of its own (``draw_waveform``, queued by a receiver of ``stem_saved`` once the
stem's transaction commits, so the ingest that stored it neither waits for it
nor reads the stem back), else on its first view. It is
kept in Django's default cache under a key derived from what identifies the
bytes (a stem's SHA-256; a job's id and stored audio name), so it never goes
stale and the key stays short whatever the file name. With a cache shared by
the workers and the web processes (Redis, Memcached, the database), the first
page view reads no stem from storage. Browsers keep the pictures too: they are
answered with an ``ETag`` and ``Cache-Control: private, max-age=3600``.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import soundfile as sf
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import get_conditional_response

from django_aistemsplitter import signals
from django_aistemsplitter.filestreams import open_stored
from django_aistemsplitter.models import SplitJob, Stem
from django_aistemsplitter.serving import StoredAudio, source_audio, stem_audio

logger = logging.getLogger(__name__)

__all__ = [
    "Waveform",
    "connect",
    "draw_stem",
    "job_audio_svg",
    "peaks",
    "peaks_svg",
    "serve_svg",
    "source_waveform",
    "stem_svg",
    "stem_waveform",
]

WIDTH = 600
HEIGHT = 64
CACHE_TIMEOUT = 30 * 24 * 3600
CACHE_PREFIX = "aistemsplitter:waveform:v2"
#: Browsers reuse a picture this long before revalidating it (``304`` by its ETag).
BROWSER_MAX_AGE = 3600


def peaks(source: str | IO[bytes], columns: int = WIDTH) -> np.ndarray:
    """The peak absolute sample value (all channels) of ``columns`` equal slices, in [0, 1].

    Reads ``ceil(frames / columns)`` frames at a time. Raises ``soundfile``'s errors
    (``LibsndfileError``/``RuntimeError``) for undecodable input.
    """
    if columns <= 0:
        raise ValueError("columns must be positive")
    with sf.SoundFile(source) as f:
        frames = f.frames
        out = np.zeros(columns, dtype=np.float32)
        if frames <= 0:
            return out
        block = max(1, math.ceil(frames / columns))
        for index, chunk in enumerate(f.blocks(blocksize=block, dtype="float32", always_2d=True)):
            if index >= columns or not chunk.size:
                break
            out[index] = float(np.max(np.abs(chunk)))
    return np.clip(out, 0.0, 1.0)


def peaks_svg(values: np.ndarray, width: int = WIDTH, height: int = HEIGHT) -> str:
    """A mirrored bar outline of ``values`` as a standalone SVG document."""
    n = len(values)
    mid = height / 2.0
    step = width / max(n, 1)
    top = [f"{i * step:.1f},{mid - max(float(v), 0.005) * mid:.1f}" for i, v in enumerate(values)]
    bottom = [
        f"{i * step:.1f},{mid + max(float(v), 0.005) * mid:.1f}"
        for i, v in reversed(list(enumerate(values)))
    ]
    points = " ".join(top + bottom)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" preserveAspectRatio="none" role="img" '
        f'class="aiss-waveform"><title>waveform</title>'
        f'<line x1="0" y1="{mid}" x2="{width}" y2="{mid}" stroke="#79aec8" stroke-width="0.5"/>'
        f'<polygon points="{points}" fill="#417690"/></svg>'
    )


EMPTY_SVG = (
    f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
    f'height="{HEIGHT}" role="img" class="aiss-waveform"><title>no waveform</title>'
    f'<line x1="0" y1="{HEIGHT / 2}" x2="{WIDTH}" y2="{HEIGHT / 2}" stroke="#ccc"/></svg>'
)


def _render(field_file: Any, width: int, height: int) -> str:
    """The picture of a stored file, or the empty one when it cannot be read or decoded."""
    try:
        handle, _size = open_stored(field_file)
        with closing(handle):
            return peaks_svg(peaks(handle, width), width, height)
    except (OSError, RuntimeError, ValueError, sf.LibsndfileError):
        return EMPTY_SVG
    except Exception as exc:  # a storage's own errors (botocore's): no picture, no 500
        logger.warning("waveform of %s not drawn: %s", getattr(field_file, "name", "?"), exc)
        return EMPTY_SVG


@dataclass(frozen=True)
class Waveform:
    """The picture of one stored audio file at one size: its cache key, ETag and SVG."""

    audio: StoredAudio | None
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def _digest(self) -> str:
        identity = f"{self.audio.etag if self.audio else 'none'}:{self.width}x{self.height}"
        return hashlib.sha256(identity.encode()).hexdigest()[:40]

    @property
    def cache_key(self) -> str:
        """Short whatever the file name (memcached refuses keys over 250 characters)."""
        return f"{CACHE_PREFIX}:{self._digest}"

    @property
    def etag(self) -> str:
        return f'"{self._digest}"'

    def svg(self) -> str:
        """The cached picture, computed (and cached) on a miss."""
        if self.audio is None:
            return EMPTY_SVG
        svg = cache.get(self.cache_key)
        if svg is None:
            svg = _render(self.audio.file, self.width, self.height)
            cache.set(self.cache_key, svg, CACHE_TIMEOUT)
        return str(svg)


def stem_waveform(stem: Stem, width: int = WIDTH, height: int = HEIGHT) -> Waveform:
    return Waveform(stem_audio(stem) if stem.file else None, width, height)


def source_waveform(job: SplitJob, width: int = WIDTH, height: int = HEIGHT) -> Waveform:
    return Waveform(source_audio(job) if job.audio else None, width, height)


def stem_svg(stem: Stem, width: int = WIDTH, height: int = HEIGHT) -> str:
    """The cached waveform of ``stem`` (keyed by its SHA-256)."""
    return stem_waveform(stem, width, height).svg()


def job_audio_svg(job: SplitJob, width: int = WIDTH, height: int = HEIGHT) -> str:
    """The cached waveform of a job's source audio (keyed by the job and its stored name)."""
    return source_waveform(job, width, height).svg()


def serve_svg(request: HttpRequest, waveform: Waveform) -> HttpResponseBase:
    """Answer with the picture, or ``304`` when the browser's copy is current.

    A revalidation is answered from the ETag alone: no cache lookup, no storage read.
    """
    validators = HttpResponse(content_type="image/svg+xml")
    validators["ETag"] = waveform.etag
    validators["Cache-Control"] = f"private, max-age={BROWSER_MAX_AGE}"
    answer = get_conditional_response(request, etag=waveform.etag, response=validators)
    if answer is not None and answer is not validators:
        return answer
    validators.content = waveform.svg().encode()
    return validators


# --- computed after a stem is stored -----------------------------------------------------

#: ``send(stem_id)``: queues the drawing of a stored stem's picture (the Celery task's sender).
Sender = Callable[[int], None]

_sender: Sender | None = None


def draw_stem(stem_id: int) -> bool:
    """Draw and cache the picture of a stored stem; False if the stem is gone or unreadable.

    The work of the ``draw_waveform`` task. A picture is a nicety: whatever goes
    wrong is logged and answered False, never raised, so a broken file or storage
    neither fails nor retries the task (the page view draws it again, or shows
    the empty picture).
    """
    stem = Stem.objects.filter(pk=stem_id).first()
    if stem is None or not stem.file:
        return False
    try:
        stem_waveform(stem).svg()
    except Exception:
        logger.exception("waveform of stem %s of job %s not drawn", stem.name, stem.job_id)
        return False
    return True


def _queue_stored_stem(sender: Any, job: SplitJob, stem: Stem, **kwargs: Any) -> None:
    """Have the stem's picture drawn by a task once its transaction commits.

    Drawing reads the whole stem back from storage: not something the ingest,
    which has just written it, should wait for. A failure to queue (broker down)
    is logged, never raised into the ingest's other receivers: the first view
    draws the picture then.
    """
    send = _sender
    if send is None:
        return
    stem_id = stem.pk

    def queue() -> None:
        try:
            send(stem_id)
        except Exception:
            logger.exception("waveform of stem %s of job %s not queued", stem.name, job.pk)

    transaction.on_commit(queue)


def connect(send: Sender) -> None:
    """Queue each stored stem's picture with ``send`` (the task module's sender; idempotent)."""
    global _sender
    _sender = send
    signals.stem_saved.connect(_queue_stored_stem, dispatch_uid="aistemsplitter:waveform:draw")
