"""Short-time Fourier transform helpers shared by the spectral engine and stem derivation.

Masking separation works on an STFT that reconstructs perfectly: if the masks of
all stems sum to one, the inverse transforms of the masked spectra sum back to
the mixture (the transform is linear). A square-root periodic Hann window used
for both analysis and synthesis at 50 % overlap satisfies this (its square, the
Hann window, overlap-adds to exactly one), and 50 % overlap halves the work of a
75 % overlap. Arrays are laid out (channels, frames, bins) so the frequency axis
is contiguous for ``rfft``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["crossover", "fft_size", "istft", "stft"]


def fft_size(sample_rate: int, seconds: float = 0.093) -> int:
    """The power of two closest to ``seconds`` of audio (4096 at 44.1 and 48 kHz)."""
    return int(2 ** round(np.log2(max(16.0, seconds * sample_rate))))


def _window(n_fft: int) -> np.ndarray:
    periodic_hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    return np.sqrt(periodic_hann).astype(np.float32)


def _padded(audio: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Centre the first frame on sample 0 and pad the end to a whole number of hops."""
    length = audio.shape[-1]
    frames = -(-length // hop) + 1
    total = (frames - 1) * hop + n_fft
    half = n_fft // 2
    return np.pad(audio, ((0, 0), (half, total - length - half)))


def stft(audio: np.ndarray, n_fft: int) -> np.ndarray:
    """Complex spectra (channels, frames, n_fft // 2 + 1) of (channels, samples) audio."""
    hop = n_fft // 2
    padded = _padded(np.asarray(audio, dtype=np.float32), n_fft, hop)
    frames = sliding_window_view(padded, n_fft, axis=-1)[:, ::hop, :] * _window(n_fft)
    return np.fft.rfft(frames, axis=-1).astype(np.complex64)


def istft(spectra: np.ndarray, n_fft: int, length: int) -> np.ndarray:
    """Inverse of :func:`stft`: overlap-add of windowed frames, trimmed to ``length``."""
    hop = n_fft // 2
    channels, count, _ = spectra.shape
    frames = np.fft.irfft(spectra, n=n_fft, axis=-1).astype(np.float32) * _window(n_fft)
    out = np.zeros((channels, count + 1, hop), dtype=np.float32)
    out[:, :count] += frames[:, :, :hop]
    out[:, 1:] += frames[:, :, hop:]
    start = n_fft // 2
    return out.reshape(channels, -1)[:, start : start + length]


def crossover(freqs: np.ndarray, low: float, high: float) -> np.ndarray:
    """High-pass weight per frequency: 0 below ``low``, 1 above ``high``, raised cosine between.

    ``1 - crossover(...)`` is the matching low-pass, so the two always sum to one.
    """
    position = np.clip((freqs - low) / max(high - low, 1e-9), 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * position)).astype(np.float32)
