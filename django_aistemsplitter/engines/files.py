"""File-to-files separation: what the sandbox and the local backend call.

Keeping the decode -> separate -> encode loop here means callers never hold
audio arrays themselves and the memory policy lives in one place: the source is
decoded in overlapping blocks (:func:`~.audio.iter_blocks`), each block is
separated on its own, neighbouring blocks are cross-faded over their overlap,
and every stem is appended to its open output file as soon as it is final. Peak
memory therefore depends on the engine's block length, not on the file's: an
hour of audio costs what ``segment_seconds`` of audio costs.

The cross-fade weights sum to one, so when each block's stems sum to that block
(true for every built-in engine but Demucs), the streamed stems still sum to the
whole mix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from django_aistemsplitter import contract
from django_aistemsplitter.engines.audio import AudioWriter, iter_blocks, open_writer, probe
from django_aistemsplitter.engines.base import Engine, ProgressCallback, Stems
from django_aistemsplitter.engines.limits import check_format
from django_aistemsplitter.exceptions import UnsafeStemNameError

#: Separates one block: (audio, sample rate, progress) -> (stems, model that ran).
#: It is expected to go through :meth:`Engine.separate`, which checks the block.
BlockSeparator = Callable[[np.ndarray, int, ProgressCallback], tuple[Stems, str]]


@dataclass(frozen=True)
class SeparationResult:
    stems: dict[str, Path]
    model_ran: str
    duration: float
    sample_rate: int
    channels: int


def crossfade_weights(overlap: int) -> np.ndarray:
    """Weight of the *later* block over an ``overlap``-frame seam (earlier block: 1 - w).

    The first and last quarter of the overlap belong wholly to the block that has
    context there (block edges are where any separator is worst); the middle half
    is a raised-cosine fade, smooth enough that the seam cannot be heard.
    """
    margin = overlap // 4
    fade = overlap - 2 * margin
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / max(fade, 1))
    return np.concatenate([np.zeros(margin), ramp, np.ones(margin)]).astype(np.float32)


class _StemStreams:
    """One open writer per stem, cross-fading each block into the previous one's tail."""

    def __init__(self, out_dir: Path, output_format: str, rate: int, overlap: int) -> None:
        self.out_dir = out_dir
        self.output_format = output_format
        self.rate = rate
        self.overlap = overlap
        self.weights = crossfade_weights(overlap)
        self.paths: dict[str, Path] = {}
        self.writers: dict[str, AudioWriter] = {}
        self.tails: dict[str, np.ndarray] = {}
        self.frames = 0

    def _writer(self, name: str, channels: int) -> AudioWriter:
        if name not in self.writers:
            if not contract.is_safe_stem_name(name):
                raise UnsafeStemNameError(f"engine produced an unsafe stem name {name!r}")
            path = self.out_dir / f"{name}.{self.output_format}"
            self.paths[name] = path
            self.writers[name] = open_writer(path, self.rate, channels, self.output_format)
        return self.writers[name]

    def add(self, stems: Stems, last: bool) -> None:
        """Append one block's stems; hold back its final ``overlap`` frames unless ``last``."""
        for name, data in stems.items():
            data = np.array(data, dtype=np.float32)
            tail = self.tails.pop(name, None)
            if tail is not None:
                w = self.weights
                data[:, : self.overlap] = tail * (1.0 - w) + data[:, : self.overlap] * w
            keep = data.shape[-1] if last else data.shape[-1] - self.overlap
            self._writer(name, data.shape[0]).write(data[:, :keep])
            if not last:
                self.tails[name] = data[:, keep:]
        self.frames += stems_length(stems) - (self.overlap if self.frames else 0)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()

    def discard(self) -> None:
        """Remove partly written outputs after a failure."""
        self.close()
        for path in self.paths.values():
            with contextlib.suppress(OSError):
                path.unlink()


def stems_length(stems: Stems) -> int:
    return int(next(iter(stems.values())).shape[-1])


def _block_plan(engine: Engine, model: str, rate: int) -> tuple[int, int]:
    """(block, overlap) in frames at ``rate``, from the engine's preferences.

    The hop between block starts is rounded down to the engine's
    ``block_hop_multiple`` so blocks line up with the engine's own windows.
    """
    overlap = max(0, int(engine.overlap_seconds * rate))
    size = max(int(engine.segment_seconds * rate), 2 * overlap + 1)
    multiple = max(1, engine.block_hop_multiple(model, rate)) if engine.serves(model) else 1
    hop = size - overlap
    if hop > multiple:
        hop -= hop % multiple
    return hop + overlap, overlap


def _block_count(frames: int, size: int, overlap: int) -> int:
    if frames <= size:
        return 1
    return 1 + -(-(frames - size) // (size - overlap))


def _strict_separator(engine: Engine, model: str) -> BlockSeparator:
    """Run ``model`` itself on every block; :class:`UnsupportedModelError` now when unserved."""
    engine.check_model(model)
    return lambda audio, rate, progress: (engine.separate(audio, rate, model, progress), model)


def separate_file(
    engine: Engine,
    source: str | Path,
    out_dir: str | Path,
    model: str,
    output_format: str = contract.DEFAULT_OUTPUT_FORMAT,
    progress: ProgressCallback | None = None,
    *,
    separator: BlockSeparator | None = None,
) -> SeparationResult:
    """Separate ``source`` into ``out_dir/<stem>.<ext>`` files, streaming block by block.

    By default every block runs ``model`` on ``engine``, and a model the engine
    does not serve is an error before any block is decoded. A caller with another
    strategy passes ``separator`` (the sandbox answers hosted model names its
    engine does not serve by deriving stems). A header whose sample rate or
    channel count is outside :mod:`.limits` is an ``EngineError`` before any
    block is planned or decoded.
    """
    info = probe(source)
    check_format(info.sample_rate, info.channels)
    separate = separator or _strict_separator(engine, model)
    size, overlap = _block_plan(engine, contract.normalize_model(model), info.sample_rate)
    total = _block_count(info.frames, size, overlap)
    report = progress or (lambda _fraction: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    streams = _StemStreams(out, output_format, info.sample_rate, overlap)
    ran = model
    try:
        for index, (block, last) in enumerate(iter_blocks(source, size, overlap)):

            def block_progress(fraction: float, index: int = index) -> None:
                report(min(1.0, (index + fraction) / max(total, index + 1)))

            stems, ran = separate(block, info.sample_rate, block_progress)
            streams.add(stems, last)
    except BaseException:
        streams.discard()
        raise
    streams.close()
    report(1.0)
    return SeparationResult(
        dict(streams.paths), ran, streams.frames / info.sample_rate, info.sample_rate, info.channels
    )
