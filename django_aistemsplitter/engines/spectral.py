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
3. **vocals** = the non-percussive part above the bass band weighted by how
   centred each bin is: the inter-channel similarity 2|L||R| / (|L|^2 + |R|^2)
   (Avendano & Jot, "Frequency-domain upmixing", 2002) is 1 for centre-panned
   sources, which is where mixes put the lead voice. **other** = the rest.

The masks are soft and sum to one, and ``other`` is computed as the mixture minus
the three other stems in the time domain, so the four stems sum to the input to
float precision. Masks are computed once from the channel-averaged magnitude and
applied to every channel, so stems keep the mix's stereo image.

Known limits: a mono input has no stereo cue, so centre-ness is taken as 0.5;
centre-panned instruments (a lead synth) land in ``vocals``; sustained drum
notes (an 808 kick) count as bass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import median_filter

from django_aistemsplitter import contract
from django_aistemsplitter.engines.base import Engine, ProgressCallback, Stems
from django_aistemsplitter.engines.dsp import crossover, fft_size, istft, stft
from django_aistemsplitter.exceptions import ConfigurationError

_EPS = np.float32(1e-10)


@dataclass(frozen=True)
class SpectralParams:
    """Tunable constants of the pipeline; defaults were chosen on generated songs."""

    #: Length of the time median (harmonic), in seconds, above and below ``bass_high``:
    #: short enough to keep sung notes tonal, long enough below to tell bass from kick.
    harmonic_seconds: float = 0.25
    bass_harmonic_seconds: float = 0.8
    #: Height of the frequency median (percussive), in Hz.
    percussive_hz: float = 400.0
    #: Separation factor of the three-way split; 1 gives a plain two-way split.
    beta: float = 1.5
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
        out[:, cols] = median_filter(magnitude[:, cols], size=(_odd(seconds * frame_rate), 1))
    return out


def hpr_masks(
    magnitude: np.ndarray, frame_rate: float, bin_hz: float, params: SpectralParams
) -> tuple[np.ndarray, np.ndarray]:
    """Soft percussive and tonal masks of a (frames, bins) magnitude.

    With H and P the time- and frequency-median spectra, the percussive mask is
    P^2 / (P^2 + (beta H)^2) (Driedger 2014's split made soft, Wiener-style); the
    harmonic and residual classes both stay in ``tonal = 1 - percussive``.
    """
    harmonic = _time_median(magnitude, frame_rate, bin_hz, params)
    percussive = median_filter(magnitude, size=(1, _odd(params.percussive_hz / bin_hz)))
    h2 = np.square(harmonic)
    p2 = np.square(percussive)
    beta2 = np.float32(params.beta**2)
    perc_mask = p2 / (p2 + beta2 * h2 + _EPS)
    return perc_mask, np.float32(1.0) - perc_mask


def centre_mask(spectra: np.ndarray, params: SpectralParams) -> np.ndarray:
    """How centred each (frame, bin) is, 0..1, from the first two channels' magnitudes."""
    if spectra.shape[0] < 2:
        return np.full(spectra.shape[1:], 0.5, dtype=np.float32)
    left = np.abs(spectra[0])
    right = np.abs(spectra[1])
    similarity = 2.0 * left * right / (np.square(left) + np.square(right) + _EPS)
    span = params.centre_high - params.centre_low
    position = np.clip((similarity - params.centre_low) / span, 0.0, 1.0)
    return (position * position * (3.0 - 2.0 * position)).astype(np.float32)


class SpectralEngine(Engine):
    """Four stems by median-filtering HPSS, a bass crossover and stereo-centre masking."""

    name = "spectral"
    models = {"spectral": contract.FOUR_STEMS}
    default_model = "spectral"
    segment_seconds = 20.0

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
        drums, tonal = hpr_masks(magnitude, frame_rate, sample_rate / n_fft, params)
        low = np.float32(1.0) - crossover(freqs, params.bass_low, params.bass_high)
        vocal_band = (np.float32(1.0) - low) * (
            np.float32(1.0) - crossover(freqs, params.vocal_fade_low, params.vocal_fade_high)
        )
        return {
            "drums": drums,
            "bass": tonal * low,
            "vocals": tonal * vocal_band * centre_mask(spectra, params),
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
