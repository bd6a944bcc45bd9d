"""The generated songs the demo, the engine tests and the benchmarks split."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from django_aistemsplitter.engines.audio import probe
from django_aistemsplitter.sandbox.synth import STEMS, make_mixture, write_demo_song


def test_mixture_is_the_sum_of_its_sources_and_deterministic():
    mix, sources = make_mixture(1.0, 22050, seed=2, voice="synth")
    again, _ = make_mixture(1.0, 22050, seed=2, voice="synth")
    other_seed, _ = make_mixture(1.0, 22050, seed=3, voice="synth")
    assert tuple(sources) == STEMS
    assert mix.shape == (2, 22050)
    np.testing.assert_allclose(sum(sources.values()), mix, atol=1e-6)
    np.testing.assert_array_equal(mix, again)
    assert not np.array_equal(mix, other_seed)
    assert 0.85 < np.max(np.abs(mix)) <= 0.9 + 1e-6
    for source in sources.values():
        assert np.sqrt(np.mean(source**2)) > 0.01


def test_voice_is_centred_and_other_is_wide():
    _, sources = make_mixture(2.0, 22050, seed=0, voice="synth")
    vocals, other = sources["vocals"], sources["other"]
    np.testing.assert_allclose(vocals[0], vocals[1], atol=1e-6)
    side = np.sum((other[0] - other[1]) ** 2)
    mid = np.sum((other[0] + other[1]) ** 2)
    assert side > 0.3 * mid


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_espeak_voice_differs_from_the_formant_voice():
    _, spoken = make_mixture(2.0, 22050, seed=0, voice="espeak")
    _, synthetic = make_mixture(2.0, 22050, seed=0, voice="synth")
    assert np.sqrt(np.mean(spoken["vocals"] ** 2)) > 0.01
    assert not np.allclose(spoken["vocals"], synthetic["vocals"])


def test_bad_voice_or_length_is_rejected():
    with pytest.raises(ValueError):
        make_mixture(1.0, voice="robot")
    with pytest.raises(ValueError):
        make_mixture(0.0)


@pytest.mark.parametrize(("seconds", "fmt"), [(1.5, "wav"), (2.5, "flac")])
def test_demo_song_is_written_in_pieces(tmp_path: Path, seconds: float, fmt: str):
    path = write_demo_song(tmp_path / f"demo.{fmt}", seconds, 22050, piece_seconds=1.0)
    info = probe(path)
    assert info.duration == pytest.approx(seconds, abs=1e-3)
    assert info.channels == 2
