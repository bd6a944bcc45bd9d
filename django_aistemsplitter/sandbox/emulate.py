"""Answer a hosted model name with whatever engine the sandbox runs.

The sandbox stands in for the hosted service, so it must answer every hosted
model name (``htdemucs_6s`` included) with the one engine it was started with.
:func:`separate_as` runs the model when the engine serves it; otherwise it runs
the engine's default model and derives the stem names that are missing.

They are carved out of "other" (plus any stem the model does not name) by
frequency band with complementary raised-cosine masks: "piano" takes the
low-mid register where a piano's left hand and chords sit, "guitar" the upper
mids where its strums and leads sit, and "other" keeps the rest. This is a
plausible stand-in, not a separation: it only has to be deterministic, shaped
like the real answer and sum to the mix, which it does exactly (the last carved
stem is the residual). It lives with the sandbox because nothing else may
pretend one model is another: the local backend runs only what its engine serves.
"""

from __future__ import annotations

import numpy as np

from django_aistemsplitter import contract
from django_aistemsplitter.engines.base import Engine, ProgressCallback, Stems
from django_aistemsplitter.engines.dsp import crossover, fft_size, istft, stft
from django_aistemsplitter.engines.files import BlockSeparator

#: Stem name -> (band start, band end) in Hz; each edge fades over an octave below it.
BANDS: dict[str, tuple[float, float]] = {
    "piano": (110.0, 700.0),
    "guitar": (700.0, 5000.0),
}


def _band_masks(names: list[str], freqs: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frequency weights for ``names`` that sum to one at every frequency.

    Names with a known band get it (band edges fade over an octave); "other" and
    names without a band share what is left evenly.
    """
    masks: dict[str, np.ndarray] = {}
    for name in names:
        if name in BANDS:
            start, end = BANDS[name]
            masks[name] = crossover(freqs, start / 2, start) * (
                1.0 - crossover(freqs, end / 2, end)
            )
    taken = sum(masks.values(), start=np.zeros_like(freqs))
    # Overlapping bands must not claim more than everything.
    scale = np.maximum(taken, 1.0)
    masks = {name: mask / scale for name, mask in masks.items()}
    rest = [name for name in names if name not in masks]
    remainder = 1.0 - sum(masks.values(), start=np.zeros_like(freqs))
    for name in rest:
        masks[name] = remainder / len(rest)
    if not rest:
        masks[names[-1]] = masks[names[-1]] + remainder
    return {name: masks[name].astype(np.float32) for name in names}


def split_by_band(audio: np.ndarray, names: list[str], sample_rate: int) -> Stems:
    """Split (channels, samples) ``audio`` into ``names`` by frequency band; sums to ``audio``."""
    if len(names) == 1:
        return {names[0]: audio.astype(np.float32)}
    n_fft = fft_size(sample_rate)
    length = audio.shape[-1]
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate).astype(np.float32)
    spectra = stft(audio, n_fft)
    masks = _band_masks(names, freqs)
    out: Stems = {}
    for name in names[:-1]:
        out[name] = istft(spectra * masks[name], n_fft, length)
    out[names[-1]] = (audio - sum(out.values(), start=np.zeros_like(audio))).astype(np.float32)
    return out


def derive_stems(stems: Stems, wanted: tuple[str, ...], sample_rate: int) -> Stems:
    """Return exactly the stems ``wanted``, deriving missing ones from "other" and leftovers."""
    first = next(iter(stems.values()))
    present = {name: stems[name] for name in wanted if name in stems}
    missing = [name for name in wanted if name not in stems]
    leftover = [name for name in stems if name not in wanted]
    residual = sum((stems[name] for name in leftover), start=np.zeros_like(first))
    if "other" in present and missing:
        residual = residual + present.pop("other")
        missing = ["other", *missing]
    if not missing:
        if leftover:
            raise ValueError(f"cannot place stems {leftover} among {list(wanted)}")
        return {name: present[name] for name in wanted}
    present.update(split_by_band(residual, missing, sample_rate))
    return {name: present[name] for name in wanted}


def separate_as(
    engine: Engine,
    audio: np.ndarray,
    sample_rate: int,
    model: str,
    progress: ProgressCallback | None = None,
) -> tuple[Stems, str]:
    """Produce the stems of hosted ``model`` with whatever ``engine`` runs.

    When the engine serves ``model`` it runs it; otherwise it runs the engine's
    default model and derives the missing stem names from its residual ("other")
    so the stems still sum to the mix. Returns the stems and the engine model
    that really ran.
    """
    model = contract.normalize_model(model)
    wanted = contract.stems_for(model) if model in contract.MODELS else engine.stem_names(model)
    if engine.serves(model):
        return engine.separate(audio, sample_rate, model, progress), model
    ran = engine.default_model
    stems = engine.separate(audio, sample_rate, ran, progress)
    return derive_stems(stems, wanted, sample_rate), ran


def hosted_separator(engine: Engine, model: str) -> BlockSeparator:
    """The block step :func:`~django_aistemsplitter.engines.files.separate_file` takes
    to answer hosted ``model`` with ``engine`` (see :func:`separate_as`)."""
    return lambda audio, rate, progress: separate_as(engine, audio, rate, model, progress)
