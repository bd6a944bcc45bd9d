"""The sandbox answers hosted model names its engine does not serve by deriving stems."""

from __future__ import annotations

import numpy as np
import pytest

from django_aistemsplitter import contract
from django_aistemsplitter.engines import get_engine
from django_aistemsplitter.sandbox.emulate import derive_stems, separate_as
from django_aistemsplitter.sandbox.synth import make_mixture

RATE = 44100


@pytest.fixture(scope="module")
def song() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The engine tests' 8 s generated mixture (formant voice: hermetic)."""
    return make_mixture(8.0, RATE, seed=7, voice="synth")


def band_energy(audio: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(audio.mean(axis=0))) ** 2
    freqs = np.fft.rfftfreq(audio.shape[-1], 1 / RATE)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum())


def test_six_stems_are_carved_from_other_by_band_and_sum_to_the_mix(song):
    mix, _ = song
    piece = mix[:, : 2 * RATE]
    stems, ran = separate_as(get_engine("spectral"), piece, RATE, "6s")
    assert ran == "spectral"
    assert tuple(stems) == contract.SIX_STEMS
    assert np.max(np.abs(sum(stems.values()) - piece)) < 1e-4
    guitar = stems["guitar"]
    assert band_energy(guitar, 1000, 4000) > 10 * band_energy(guitar, 0, 300)
    piano = stems["piano"]
    assert band_energy(piano, 150, 600) > 10 * band_energy(piano, 2000, 20000)


def test_derive_stems_moves_unnamed_stems_into_the_new_ones():
    rng = np.random.default_rng(0)
    stems = {n: rng.standard_normal((2, 3000)).astype(np.float32) for n in ("a", "b", "other")}
    out = derive_stems(stems, ("a", "other", "guitar"), RATE)
    assert tuple(out) == ("a", "other", "guitar")
    np.testing.assert_array_equal(out["a"], stems["a"])
    np.testing.assert_allclose(sum(out.values()), sum(stems.values()), atol=1e-5)


def test_derive_stems_refuses_stems_with_nowhere_to_go():
    stems = {"a": np.zeros((1, 10), np.float32), "b": np.zeros((1, 10), np.float32)}
    with pytest.raises(ValueError, match="cannot place"):
        derive_stems(stems, ("a",), RATE)
