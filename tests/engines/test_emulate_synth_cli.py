from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from django_aistemsplitter import contract
from django_aistemsplitter.engines import get_engine, separate_as
from django_aistemsplitter.engines.__main__ import main
from django_aistemsplitter.engines.audio import probe, read_audio
from django_aistemsplitter.engines.emulate import derive_stems
from django_aistemsplitter.engines.synth import STEMS, make_mixture, write_demo_song

RATE = 44100


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


def test_cli_splits_a_file_and_prints_the_stem_paths(tmp_path: Path, capsys, song):
    source = write_demo_song(tmp_path / "in.wav", 1.0, RATE)
    code = main([str(source), "--engine", "spectral", "--format", "flac", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0
    printed = captured.out.split()
    assert printed == [str(tmp_path / f"{name}.flac") for name in contract.FOUR_STEMS]
    assert "100.0%" in captured.err
    assert read_audio(printed[0])[0].shape == (2, RATE)


def test_cli_passes_engine_options_and_reports_errors(tmp_path: Path, capsys):
    source = write_demo_song(tmp_path / "in.wav", 0.5, RATE)
    code = main([str(source), "--model", "htdemucs", "--out", str(tmp_path)])
    assert code == 1
    assert "demucs" in capsys.readouterr().err
    code = main([str(source), "--option", "beta=2", "--out", str(tmp_path / "o")])
    assert code == 0
    code = main([str(source), "--option", "nonsense=1", "--out", str(tmp_path / "p")])
    assert code == 1
