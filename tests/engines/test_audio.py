from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from django_aistemsplitter.engines.audio import (
    fit_length,
    iter_blocks,
    open_writer,
    probe,
    read_audio,
    resample,
    to_channels,
    write_audio,
)
from django_aistemsplitter.exceptions import AudioDecodeError

RATE = 44100


def tone(seconds: float = 0.5, rate: int = RATE, channels: int = 2) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    rows = [0.4 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)]
    return np.stack(rows).astype(np.float32)


@pytest.mark.parametrize(
    ("fmt", "subtype", "tolerance"),
    [
        ("wav", None, 1e-4),
        ("wav", "24", 1e-6),
        ("wav", "float", 0.0),
        ("flac", None, 1e-4),
    ],
)
def test_lossless_round_trip(tmp_path: Path, fmt: str, subtype: str | None, tolerance: float):
    audio = tone()
    path = tmp_path / f"x.{fmt}"
    write_audio(path, audio, RATE, fmt, subtype)
    back, rate = read_audio(path)
    assert rate == RATE
    assert back.shape == audio.shape
    assert np.max(np.abs(back - audio)) <= tolerance


@pytest.mark.parametrize("fmt", ["mp3", "ogg"])
def test_lossy_formats_decode_with_the_same_duration(tmp_path: Path, fmt: str):
    audio = tone(1.0)
    path = tmp_path / f"x.{fmt}"
    write_audio(path, audio, RATE, fmt)
    info = probe(path)
    assert info.channels == 2
    assert info.sample_rate == RATE
    assert abs(info.duration - 1.0) < 0.1


def test_unknown_output_format_is_a_value_error(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown output format"):
        write_audio(tmp_path / "x.aac", tone(), RATE, "aac")


def test_pcm_output_is_clipped_not_wrapped(tmp_path: Path):
    path = tmp_path / "loud.wav"
    write_audio(path, np.full((1, 100), 1.7, dtype=np.float32), RATE)
    back, _ = read_audio(path)
    assert back.max() > 0.99


@pytest.mark.parametrize("payload", [b"", b"not audio at all" * 10, b"RIFF\x00\x00\x00\x00WAVE"])
def test_garbage_is_an_audio_decode_error(tmp_path: Path, payload: bytes):
    path = tmp_path / "bad.wav"
    path.write_bytes(payload)
    with pytest.raises(AudioDecodeError):
        probe(path)
    with pytest.raises(AudioDecodeError):
        read_audio(path)
    with pytest.raises(AudioDecodeError):
        list(iter_blocks(path, 100, 10))


def test_zero_frame_file_is_empty_audio(tmp_path: Path):
    path = tmp_path / "empty.wav"
    write_audio(path, np.zeros((2, 0), dtype=np.float32), RATE)
    with pytest.raises(AudioDecodeError, match="empty"):
        probe(path)
    with pytest.raises(AudioDecodeError, match="empty"):
        list(iter_blocks(path, 100, 10))


def test_file_objects_are_rewound(tmp_path: Path):
    buffer = io.BytesIO()
    write_audio(buffer, tone(), RATE, "wav")
    buffer.seek(0)
    probe(buffer)
    audio, _ = read_audio(buffer)
    assert buffer.tell() == 0
    assert audio.shape == (2, int(0.5 * RATE))


@pytest.mark.parametrize(("size", "overlap"), [(1000, 100), (7, 3), (50000, 0), (30000, 2000)])
def test_blocks_overlap_and_cover_the_file_exactly(tmp_path: Path, size: int, overlap: int):
    audio = tone(0.6)
    path = tmp_path / "x.wav"
    write_audio(path, audio, RATE, "wav", "float")
    blocks = list(iter_blocks(path, size, overlap))
    assert [last for _, last in blocks] == [False] * (len(blocks) - 1) + [True]
    rebuilt = np.concatenate(
        [blocks[0][0]] + [block[:, overlap:] for block, _ in blocks[1:]], axis=1
    )
    np.testing.assert_array_equal(rebuilt, audio)
    for (before, _), (after, _) in itertools.pairwise(blocks):
        np.testing.assert_array_equal(before[:, before.shape[1] - overlap :], after[:, :overlap])
        assert before.shape[1] == size


def test_iter_blocks_rejects_overlap_not_below_size(tmp_path: Path):
    path = tmp_path / "x.wav"
    write_audio(path, tone(), RATE)
    with pytest.raises(ValueError):
        list(iter_blocks(path, 10, 10))


def test_streamed_writer_equals_one_shot_write(tmp_path: Path):
    audio = tone(0.5)
    with open_writer(tmp_path / "streamed.flac", RATE, 2, "flac") as writer:
        for start in range(0, audio.shape[1], 4000):
            writer.write(audio[:, start : start + 4000])
    write_audio(tmp_path / "whole.flac", audio, RATE, "flac")
    streamed, _ = read_audio(tmp_path / "streamed.flac")
    whole, _ = read_audio(tmp_path / "whole.flac")
    np.testing.assert_array_equal(streamed, whole)


def test_channel_conversions():
    stereo = tone(0.01)
    mono = to_channels(stereo, 1)
    assert mono.shape == (1, stereo.shape[1])
    np.testing.assert_allclose(mono[0], stereo.mean(axis=0))
    assert to_channels(mono, 2).shape == (2, stereo.shape[1])
    four = to_channels(stereo, 4)
    np.testing.assert_array_equal(four[2], stereo[0])
    assert to_channels(four, 3).shape[0] == 3


def test_resample_keeps_duration_and_pitch():
    audio = tone(1.0, rate=48000, channels=1)
    out = resample(audio, 48000, RATE)
    assert out.dtype == np.float32
    assert out.shape == (1, RATE)
    peak_hz = np.argmax(np.abs(np.fft.rfft(out[0]))) * RATE / out.shape[1]
    assert abs(peak_hz - 220) < 2


def test_fit_length_trims_and_pads():
    audio = np.ones((2, 10), dtype=np.float32)
    assert fit_length(audio, 4).shape == (2, 4)
    padded = fit_length(audio, 12)
    assert padded.shape == (2, 12)
    assert padded[:, 10:].sum() == 0


@pytest.mark.parametrize(("fmt", "subtype"), [("wav", "PCM_16"), ("wav", "FLOAT"), ("flac", None)])
def test_files_written_without_a_disk_sync_are_soundfiles_own_bytes(
    tmp_path: Path, fmt: str, subtype: str | None
) -> None:
    # Our writers skip libsndfile's fsync at close; nothing else may change: the
    # header is completed and every frame is there, as soundfile writes them.
    rng = np.random.default_rng(3)
    audio = (rng.standard_normal((2, 44100)) * 0.2).astype(np.float32)
    ours, theirs = tmp_path / f"ours.{fmt}", tmp_path / f"theirs.{fmt}"
    with open_writer(ours, 44100, 2, fmt, subtype) as writer:
        writer.write(audio[:, :20000])
        writer.write(audio[:, 20000:])
    kind = {"wav": "WAV", "flac": "FLAC"}[fmt]
    sf.write(theirs, audio.T, 44100, format=kind, subtype=subtype or "PCM_16")
    assert ours.read_bytes() == theirs.read_bytes()
    one_shot = tmp_path / f"one_shot.{fmt}"
    write_audio(one_shot, audio, 44100, fmt, subtype)
    assert one_shot.read_bytes() == theirs.read_bytes()
