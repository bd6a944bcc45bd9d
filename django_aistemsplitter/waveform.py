"""Waveform pictures: peak values of an audio file drawn as a small SVG, server-side.

The file is read block by block with ``soundfile`` (one block per picture column),
so memory stays constant whatever the length of the audio. Pictures are cached in
Django's default cache, keyed by what identifies the bytes (a stem's id and
SHA-256), so a picture is computed once per stem and never goes stale.
"""

from __future__ import annotations

import math
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import soundfile as sf
from django.core.cache import cache

if TYPE_CHECKING:
    from django_aistemsplitter.models import SplitJob, Stem

__all__ = ["job_audio_svg", "peaks", "peaks_svg", "stem_svg"]

WIDTH = 600
HEIGHT = 64
CACHE_TIMEOUT = 30 * 24 * 3600
CACHE_PREFIX = "aistemsplitter:waveform:v1"


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
    try:
        with field_file.open("rb") as handle:
            return peaks_svg(peaks(handle, width), width, height)
    except (OSError, RuntimeError, ValueError, sf.LibsndfileError):
        return EMPTY_SVG


def stem_svg(stem: Stem, width: int = WIDTH, height: int = HEIGHT) -> str:
    """The cached waveform of ``stem`` (keyed by stem id and SHA-256)."""
    digest = stem.sha256 or f"name-{stem.file.name}-{stem.size}"
    key = f"{CACHE_PREFIX}:stem:{stem.pk}:{digest}:{width}x{height}"
    svg = cache.get(key)
    if svg is None:
        svg = _render(stem.file, width, height)
        cache.set(key, svg, CACHE_TIMEOUT)
    return str(svg)


def job_audio_svg(job: SplitJob, width: int = WIDTH, height: int = HEIGHT) -> str:
    """The cached waveform of a job's source audio (keyed by job id and file name)."""
    if not job.audio:
        return EMPTY_SVG
    key = f"{CACHE_PREFIX}:source:{job.pk}:{job.audio.name}:{width}x{height}"
    svg = cache.get(key)
    if svg is None:
        svg = _render(job.audio, width, height)
        cache.set(key, svg, CACHE_TIMEOUT)
    return str(svg)
