"""The embedded default engine: classic spectral masking with numpy and scipy, no weights.

The pipeline, one short-time spectrum (~93 ms frames, 50 % overlap) for all stems:

1. **Harmonic/percussive split** by median filtering (Fitzgerald, "Harmonic/
   percussive separation using median filtering", DAFx 2010): a median across time
   keeps steady partials (harmonic), a median across frequency keeps broadband
   clicks (percussive). A separation factor ``beta`` (Driedger, Mueller & Disch,
   "Extending harmonic-percussive separation of audio signals", ISMIR 2014) leaves
   what is clearly neither in a *residual* class (sung vowels with vibrato,
   plucks) instead of forcing it into drums.
2. **drums** = the percussive mask. **bass** = the non-percussive part below a
   raised-cosine crossover (120-300 Hz).
3. **vocals** = the harmonic part above the bass band (a bin must be at least as
   harmonic as percussive: noisy residue such as a snare's tail stays out) weighted
   by how centred each bin is. Centred means *the same signal in both channels*:
   the real part of the normalised inter-channel cross-spectrum,
   2 Re(L R*) / (|L|^2 + |R|^2) (the coherence of Avendano & Jot, "Frequency-domain
   upmixing", 2002), is 1 only for a source mixed identically into both channels,
   which is where mixes put the lead voice. Comparing magnitudes alone, as this
   engine first did, also called centred every instrument recorded in stereo
   (a grand piano, a string section) and any reverb that reaches both sides
   equally loud but with other phases: measured on songs played by recorded
   instruments (``bench/quality_sampled.py``), those instruments then made up
   most of the vocals' error. **other** = the rest.

The masks are soft and sum to one, and ``other`` is computed as the mixture minus
the three other stems in the time domain, so the four stems sum to the input to
float precision. Masks are computed once from the channel-averaged magnitude and
applied to every channel, so stems keep the mix's stereo image.

Cost: the frequency median is the expensive step (a window of ~37 bins at every
bin). The percussive spectrum it estimates is smooth along frequency by nature,
so it is evaluated every ``percussive_step`` bins with ``np.partition`` over a
sliding window and interpolated in between, about 20 times cheaper than a full
``scipy.ndimage.median_filter``, with stems within a tenth of a dB of SDR.

Known limits: a mono input has no stereo cue, so centre-ness is taken as 0.5;
centre-panned mono instruments (a lead synth, a mono electric piano) still land
in ``vocals``; sustained drum notes (an 808 kick) count as bass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import median_filter

from django_aistemsplitter import contract
from django_aistemsplitter.engines.base import (
    FIXED_MMAP_THRESHOLD,
    Engine,
    ProgressCallback,
    Stems,
)
from django_aistemsplitter.engines.dsp import crossover, fft_size, istft, stft
from django_aistemsplitter.exceptions import ConfigurationError

_EPS = np.float32(1e-10)
#: Frames per ``np.partition`` call in :func:`frequency_median` (bounds its copy).
_FRAMES_PER_CHUNK = 64


@dataclass(frozen=True)
class SpectralParams:
    """Tunable constants of the pipeline; defaults were chosen on generated songs."""

    #: Length of the time median (harmonic), in seconds, above and below ``bass_high``:
    #: short enough to keep sung notes tonal, long enough below to tell bass from kick.
    harmonic_seconds: float = 0.25
    bass_harmonic_seconds: float = 0.8
    #: Height of the frequency median (percussive), in Hz, and every how many bins
    #: it is evaluated (interpolated in between; 1 evaluates it everywhere).
    percussive_hz: float = 400.0
    percussive_step: float = 4.0
    #: Separation factor of the three-way split; 1 gives a plain two-way split.
    beta: float = 1.5
    #: The same factor for the vocals: a bin joins them when its harmonic estimate is
    #: at least ``vocal_beta`` times its percussive one (soft, Wiener-style).
    vocal_beta: float = 1.0
    #: Bass crossover: all bass below ``bass_low`` Hz, none above ``bass_high`` Hz.
    bass_low: float = 120.0
    bass_high: float = 300.0
    #: Vocal band: fades out between these frequencies (Hz).
    vocal_fade_low: float = 10000.0
    vocal_fade_high: float = 16000.0
    #: Similarity below which a bin is not centred, and above which it fully is.
    centre_low: float = 0.55
    centre_high: float = 0.9


def _odd(value: float) -> int:
    return max(3, round(value) | 1)


def _time_median(
    magnitude: np.ndarray, frame_rate: float, bin_hz: float, params: SpectralParams
) -> np.ndarray:
    """Median across time, longer in the bass band than above it."""
    split = min(magnitude.shape[1], int(params.bass_high / bin_hz) + 1)
    out = np.empty_like(magnitude)
    for cols, seconds in (
        (slice(0, split), params.bass_harmonic_seconds),
        (slice(split, None), params.harmonic_seconds),
    ):
        size = _odd(seconds * frame_rate)
        if size == 5 and magnitude.shape[0] > 2:
            out[:, cols] = _median_of_5_frames(magnitude[:, cols])
        else:
            out[:, cols] = median_filter(magnitude[:, cols], size=(size, 1))
    return out


def _median_of_5_frames(magnitude: np.ndarray) -> np.ndarray:
    """``median_filter(magnitude, size=(5, 1))`` (same edges) with eight min/max passes.

    The default harmonic window at 44.1 kHz is 5 frames, and a rank filter spends
    most of its time on bookkeeping for so small a window. Of four values a, b, c,
    d, the smallest and the largest cannot be the median of five (three others lie
    above, respectively below, them); the median of the five is therefore the median
    of the two middle ones of the four and the fifth value.
    """
    frames = magnitude.shape[0]
    padded = np.pad(magnitude, ((2, 2), (0, 0)), mode="symmetric")
    a, b, c, d, e = (padded[i : i + frames] for i in range(5))
    low_ab, high_ab = np.minimum(a, b), np.maximum(a, b)
    low_cd, high_cd = np.minimum(c, d), np.maximum(c, d)
    lower = np.maximum(low_ab, low_cd)  # the two middle values of a, b, c, d
    upper = np.minimum(high_ab, high_cd)
    return np.maximum(np.minimum(lower, upper), np.minimum(np.maximum(lower, upper), e))


def frequency_median(magnitude: np.ndarray, width: int, step: int = 1) -> np.ndarray:
    """Median of each (frames, bins) row over ``width`` bins, evaluated every ``step`` bins.

    Edges are mirrored. Between evaluated bins the result is interpolated linearly,
    which suits the smooth, broadband spectra this estimates (see the module notes).
    """
    width = _odd(width)
    half = width // 2
    step = max(1, int(step))
    bins = magnitude.shape[1]
    padded = np.pad(magnitude, ((0, 0), (half, half)), mode="reflect")
    windows = sliding_window_view(padded, width, axis=1)[:, ::step]
    coarse = np.empty(windows.shape[:2], dtype=magnitude.dtype)
    # np.partition copies its input: a few frames at a time keeps that copy small.
    for start in range(0, windows.shape[0], _FRAMES_PER_CHUNK):
        rows = slice(start, start + _FRAMES_PER_CHUNK)
        coarse[rows] = np.partition(windows[rows], half, axis=-1)[..., half]
    if step == 1:
        return coarse
    position = np.arange(bins, dtype=np.float32) / np.float32(step)
    left = position.astype(np.intp)
    right = np.minimum(left + 1, coarse.shape[1] - 1)
    frac = position - left
    return coarse[:, left] * (np.float32(1.0) - frac) + coarse[:, right] * frac


def hpr_masks(
    magnitude: np.ndarray, frame_rate: float, bin_hz: float, params: SpectralParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Soft percussive, tonal and harmonic masks of a (frames, bins) magnitude.

    With H and P the time- and frequency-median spectra, the percussive mask is
    P^2 / (P^2 + (beta H)^2) (Driedger 2014's split made soft, Wiener-style); the
    harmonic and residual classes both stay in ``tonal = 1 - percussive``. The
    stricter ``harmonic`` mask, H^2 / (H^2 + (vocal_beta P)^2) capped by ``tonal``,
    is what the vocals draw from.
    """
    harmonic = _time_median(magnitude, frame_rate, bin_hz, params)
    percussive = frequency_median(
        magnitude, round(params.percussive_hz / bin_hz), round(params.percussive_step)
    )
    h2 = np.square(harmonic)
    p2 = np.square(percussive)
    perc_mask = p2 / (p2 + np.float32(params.beta**2) * h2 + _EPS)
    tonal = np.float32(1.0) - perc_mask
    strict = h2 / (h2 + np.float32(params.vocal_beta**2) * p2 + _EPS)
    return perc_mask, tonal, np.minimum(strict, tonal)


def centre_mask(spectra: np.ndarray, params: SpectralParams) -> np.ndarray:
    """How centred each (frame, bin) is, 0..1: the first two channels' coherence.

    2 Re(L R*) / (|L|^2 + |R|^2) is 1 when both channels carry the same signal,
    lower when their levels differ, and 0 or below when their phases disagree
    (stereo recordings, reverb, out-of-phase tricks).
    """
    if spectra.shape[0] < 2:
        return np.full(spectra.shape[1:], 0.5, dtype=np.float32)
    left = spectra[0]
    right = spectra[1]
    cross = left.real * right.real + left.imag * right.imag
    power = np.square(left.real) + np.square(left.imag) + np.square(right.real)
    power += np.square(right.imag)
    similarity = 2.0 * cross / (power + _EPS)
    span = params.centre_high - params.centre_low
    position = np.clip((similarity - params.centre_low) / span, 0.0, 1.0)
    return (position * position * (3.0 - 2.0 * position)).astype(np.float32)


class SpectralEngine(Engine):
    """Four stems by median-filtering HPSS, a bass crossover and stereo-centre masking."""

    name = "spectral"
    models = {"spectral": contract.FOUR_STEMS}
    default_model = "spectral"
    segment_seconds = 20.0
    # 60 s vs 900 s song: peak growth 33 -> 20 MiB, same CPU (separation_rss_growth_mb).
    process_env = FIXED_MMAP_THRESHOLD

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        known = set(SpectralParams.__dataclass_fields__)
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigurationError(
                f"unknown spectral engine options {unknown}; use {', '.join(sorted(known))}"
            )
        self.params = SpectralParams(**{k: float(v) for k, v in options.items()})

    def masks(self, spectra: np.ndarray, sample_rate: int, n_fft: int) -> dict[str, np.ndarray]:
        """Soft (frames, bins) masks of vocals, drums and bass; ``other`` is the rest."""
        params = self.params
        magnitude = np.abs(spectra).mean(axis=0)
        freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate).astype(np.float32)
        frame_rate = sample_rate / (n_fft // 2)
        drums, tonal, harmonic = hpr_masks(magnitude, frame_rate, sample_rate / n_fft, params)
        low = np.float32(1.0) - crossover(freqs, params.bass_low, params.bass_high)
        vocal_band = (np.float32(1.0) - low) * (
            np.float32(1.0) - crossover(freqs, params.vocal_fade_low, params.vocal_fade_high)
        )
        return {
            "drums": drums,
            "bass": tonal * low,
            "vocals": harmonic * vocal_band * centre_mask(spectra, params),
        }

    def separate_array(
        self, audio: np.ndarray, sample_rate: int, model: str, progress: ProgressCallback
    ) -> Stems:
        n_fft = fft_size(sample_rate)
        length = audio.shape[-1]
        spectra = stft(audio, n_fft)
        progress(0.25)
        stems: Stems = {}
        for name, mask in self.masks(spectra, sample_rate, n_fft).items():
            stems[name] = istft(spectra * mask, n_fft, length)
        progress(0.9)
        stems["other"] = audio - stems["vocals"] - stems["drums"] - stems["bass"]
        progress(1.0)
        return stems
