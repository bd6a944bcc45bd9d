from __future__ import annotations

import numpy as np
import pytest

from django_aistemsplitter.engines.dsp import crossover, fft_size, istft, stft


@pytest.mark.parametrize("length", [1, 100, 4096, 44100 + 17])
def test_stft_round_trip_is_perfect(length: int):
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((2, length)).astype(np.float32)
    n_fft = 1024
    spectra = stft(audio, n_fft)
    assert spectra.shape[0] == 2
    assert spectra.shape[2] == n_fft // 2 + 1
    np.testing.assert_allclose(istft(spectra, n_fft, length), audio, atol=1e-5)


def test_complementary_masks_sum_back_to_the_input():
    rng = np.random.default_rng(1)
    audio = rng.standard_normal((1, 5000)).astype(np.float32)
    spectra = stft(audio, 512)
    mask = rng.random(spectra.shape[1:]).astype(np.float32)
    parts = istft(spectra * mask, 512, 5000) + istft(spectra * (1 - mask), 512, 5000)
    np.testing.assert_allclose(parts, audio, atol=1e-5)


def test_crossover_is_a_smooth_step_whose_complement_sums_to_one():
    freqs = np.linspace(0, 1000, 101)
    high = crossover(freqs, 200, 400)
    assert high[freqs <= 200].max() == 0
    assert high[freqs >= 400].min() == 1
    assert np.all(np.diff(high) >= 0)
    np.testing.assert_allclose(high + (1 - high), 1)


def test_fft_size_tracks_the_sample_rate():
    assert fft_size(44100) == 4096
    assert fft_size(22050) == 2048
    assert fft_size(8000) == 1024
