from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from django_aistemsplitter import contract
from django_aistemsplitter.engines import get_engine
from django_aistemsplitter.engines.audio import read_audio, write_audio
from django_aistemsplitter.engines.files import crossfade_weights, separate_file
from django_aistemsplitter.exceptions import AudioDecodeError, UnsupportedModelError
from django_aistemsplitter.sandbox.emulate import hosted_separator
from django_aistemsplitter.sandbox.synth import sdr

RATE = 44100


@pytest.fixture
def song_file(tmp_path: Path, song) -> Path:
    mix, _ = song
    path = tmp_path / "song.wav"
    write_audio(path, mix[:, : 5 * RATE], RATE, "wav", "float")
    return path


def small_blocks(name: str, segment: float = 1.5, overlap: float = 0.4):
    engine = get_engine(name)
    engine.segment_seconds = segment
    engine.overlap_seconds = overlap
    return engine


def read_stems(paths: dict[str, Path]) -> dict[str, np.ndarray]:
    return {name: read_audio(path)[0] for name, path in paths.items()}


def test_crossfade_weights_rise_from_zero_to_one():
    w = crossfade_weights(400)
    assert w.shape == (400,)
    assert w[:100].max() == 0 and w[-100:].min() == 1
    assert np.all(np.diff(w) >= 0)


def test_streamed_passthrough_is_exact_across_seams(tmp_path: Path, song_file: Path):
    """Passthrough stems are mix/4 everywhere, so any seam error would show."""
    mix, _ = read_audio(song_file)
    result = separate_file(small_blocks("passthrough"), song_file, tmp_path / "out", "htdemucs")
    stems = read_stems(result.stems)
    assert set(stems) == set(contract.FOUR_STEMS)
    for stem in stems.values():
        assert stem.shape == mix.shape
        assert np.max(np.abs(stem - mix / 4)) < 1e-4
    assert result.duration == pytest.approx(5.0)
    assert (result.sample_rate, result.channels, result.model_ran) == (RATE, 2, "htdemucs")


def test_streamed_spectral_sums_to_the_mix_and_matches_one_pass(tmp_path: Path, song_file: Path):
    mix, _ = read_audio(song_file)
    progress: list[float] = []
    result = separate_file(
        small_blocks("spectral"), song_file, tmp_path / "out", "spectral", "wav", progress.append
    )
    stems = read_stems(result.stems)
    # Each of the four stems is quantised to 16-bit WAV: at most one LSB (2**-15) apiece.
    assert np.max(np.abs(sum(stems.values()) - mix)) < 4 * 2**-15 + 1e-6
    whole = get_engine("spectral").separate(mix, RATE)
    for name in ("drums", "bass", "vocals"):
        # Streaming in 1.5 s blocks changes the stems only slightly (near seams).
        assert sdr(whole[name], stems[name]) > 12
    assert progress == sorted(progress)
    assert progress[-1] == 1.0
    assert len(progress) > 8


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_other_output_formats(tmp_path: Path, song_file: Path, fmt: str):
    result = separate_file(small_blocks("spectral", 3.0, 1.0), song_file, tmp_path, "spectral", fmt)
    for name, path in result.stems.items():
        assert path == tmp_path / f"{name}.{fmt}"
        audio, rate = read_audio(path)
        assert rate == RATE
        assert abs(audio.shape[1] / RATE - 5.0) < 0.1


def test_emulating_a_six_stem_model_still_sums_to_the_mix(tmp_path: Path, song_file: Path):
    mix, _ = read_audio(song_file)
    engine = small_blocks("spectral")
    result = separate_file(
        engine,
        song_file,
        tmp_path,
        "htdemucs_6s",
        separator=hosted_separator(engine, "htdemucs_6s"),
    )
    assert tuple(result.stems) == contract.SIX_STEMS
    assert result.model_ran == "spectral"
    stems = read_stems(result.stems)
    assert np.max(np.abs(sum(stems.values()) - mix)) < 6 * 2**-15 + 1e-6


def test_unserved_model_fails_before_writing(tmp_path: Path, song_file: Path):
    out = tmp_path / "out"
    with pytest.raises(UnsupportedModelError):
        separate_file(get_engine("spectral"), song_file, out, "htdemucs")
    assert not out.exists() or not any(out.iterdir())


def test_corrupt_input_is_a_decode_error(tmp_path: Path):
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"\xff\xfb" + b"\x00" * 50)
    with pytest.raises(AudioDecodeError):
        separate_file(get_engine("spectral"), bad, tmp_path / "out", "spectral")


def test_failure_mid_stream_removes_partial_outputs(tmp_path: Path, song_file: Path):
    engine = small_blocks("spectral")
    calls = {"n": 0}
    original = engine.separate_array

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("boom")
        return original(*args, **kwargs)

    engine.separate_array = flaky  # type: ignore[method-assign]
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom"):
        separate_file(engine, song_file, out, "spectral")
    assert list(out.iterdir()) == []


def test_mono_input_gives_mono_stems(tmp_path: Path, song):
    mix, _ = song
    path = tmp_path / "mono.flac"
    write_audio(path, mix[:1, :RATE], RATE, "flac")
    result = separate_file(get_engine("spectral"), path, tmp_path / "out", "spectral")
    assert result.channels == 1
    assert all(read_audio(p)[0].shape == (1, RATE) for p in result.stems.values())
