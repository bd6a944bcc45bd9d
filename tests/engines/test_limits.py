"""Engines refuse audio they cannot handle with an EngineError, never a crash.

A forged header once reached the spectral engine with a 2 GHz sample rate; scipy's
median filter died with SIGSEGV (and the block cross-fade asked for 15 GiB first).
Files crafted here byte by byte are separated in a child process with a capped
address space, so a regression shows as a signal or a MemoryError in the child,
not as a dead test run or a swapping machine.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from django_aistemsplitter.engines import Engine, get_engine
from django_aistemsplitter.engines.files import separate_file
from django_aistemsplitter.engines.limits import (
    MAX_CHANNELS,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    check_format,
)
from django_aistemsplitter.exceptions import EngineError
from django_aistemsplitter.sandbox.emulate import separate_as

ROOT = Path(__file__).resolve().parents[2]
RATE = 44100
#: Address space of the child: far above what a 4 KB file needs, far below the
#: gigabytes an unchecked header makes the engines ask for.
CHILD_ADDRESS_SPACE = 4 * 1024**3

CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
from django_aistemsplitter.engines import get_engine
from django_aistemsplitter.engines.files import separate_file
from django_aistemsplitter.exceptions import EngineError
from django_aistemsplitter.sandbox.emulate import hosted_separator

source, out = sys.argv[1:3]
for case in sys.argv[3:]:
    engine_name, _, hosted_model = case.partition(":")
    engine = get_engine(engine_name)
    model = hosted_model or engine.default_model
    separator = hosted_separator(engine, model) if hosted_model else None
    try:
        separate_file(engine, source, out, model, separator=separator)
    except EngineError as exc:
        print("EngineError:", exc)
    else:
        print("separated")
"""


def crafted_wav(
    path: Path,
    rate: int,
    channels: int = 2,
    frames: int = 1000,
    *,
    samples: bytes | None = None,
    float32: bool = False,
) -> Path:
    """A canonical 44-byte-header WAV whose header says ``rate`` and ``channels``.

    The body is ``frames`` frames of tiny PCM samples unless ``samples`` (raw
    little-endian frames) is given; ``float32`` declares IEEE float samples.
    """
    bits = 32 if float32 else 16
    block = channels * bits // 8
    data = samples if samples is not None else b"\x01\x00" * (channels * frames)
    fmt = struct.pack(
        "<HHIIHH", 3 if float32 else 1, channels, rate, (rate * block) & 0xFFFFFFFF, block, bits
    )
    path.write_bytes(
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )
    return path


def separate_in_child(source: Path, out: Path, *cases: str) -> list[str]:
    """Run ``separate_file`` on ``source`` in a fresh process; one verdict line per case.

    A case is an engine name, or ``engine:hosted_model`` for the sandbox's way of
    answering a hosted model name.
    """
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD.format(limit=CHILD_ADDRESS_SPACE),
            str(source),
            str(out),
            *cases,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=240,
    )
    assert result.returncode == 0, (
        f"child ended with {result.returncode} (negative: killed by that signal)\n"
        f"{result.stderr[-2000:]}"
    )
    return result.stdout.splitlines()


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"rate": 2_000_000_000}, "2000000000 Hz"),
        ({"rate": 1, "channels": 1}, "1 Hz"),
        ({"rate": MIN_SAMPLE_RATE - 1}, f"{MIN_SAMPLE_RATE - 1} Hz"),
        ({"rate": MAX_SAMPLE_RATE + 1}, f"{MAX_SAMPLE_RATE + 1} Hz"),
        ({"rate": RATE, "channels": MAX_CHANNELS + 1}, f"{MAX_CHANNELS + 1} channels"),
        ({"rate": RATE, "channels": 64}, "64 channels"),
    ],
)
def test_a_forged_header_is_an_engine_error_not_a_crash(
    tmp_path: Path, header: dict[str, int], reason: str
):
    source = crafted_wav(tmp_path / "forged.wav", **header)
    out = tmp_path / "stems"
    verdicts = separate_in_child(source, out, "spectral", "passthrough", "spectral:htdemucs_6s")
    assert len(verdicts) == 3
    for verdict in verdicts:
        assert verdict.startswith("EngineError:"), verdict
        assert reason in verdict
    assert not out.exists() or not any(out.iterdir())


def test_nan_samples_in_a_file_are_an_engine_error(tmp_path: Path):
    frames = np.zeros((RATE // 10, 2), dtype="<f4")
    frames[100, 1] = np.nan
    source = crafted_wav(tmp_path / "nan.wav", RATE, samples=frames.tobytes(), float32=True)
    [verdict] = separate_in_child(source, tmp_path / "stems", "spectral")
    assert verdict.startswith("EngineError:"), verdict
    assert "NaN" in verdict


def test_the_bounds_themselves_are_accepted(tmp_path: Path):
    for rate in (MIN_SAMPLE_RATE, MAX_SAMPLE_RATE):
        source = crafted_wav(tmp_path / f"{rate}.wav", rate, MAX_CHANNELS, frames=rate // 10)
        result = separate_file(get_engine("passthrough"), source, tmp_path / str(rate), "htdemucs")
        assert result.sample_rate == rate
        assert result.channels == MAX_CHANNELS


ENGINE_NAMES = [
    "spectral",
    "passthrough",
    pytest.param("demucs", marks=pytest.mark.demucs),
]


@pytest.fixture(params=ENGINE_NAMES)
def engine(request: pytest.FixtureRequest) -> Engine:
    if request.param == "demucs":
        pytest.importorskip("torch")
        pytest.importorskip("demucs")
    return get_engine(request.param)


def stereo(frames: int = 2048) -> np.ndarray:
    return np.zeros((2, frames), dtype=np.float32)


@pytest.mark.parametrize(
    ("audio", "rate", "reason"),
    [
        (stereo().T, RATE, "looks like (frames, channels)"),
        (np.zeros((RATE, 1), np.float32), RATE, "looks like (frames, channels)"),
        (stereo()[0], RATE, "2-D"),
        (stereo()[None], RATE, "2-D"),
        (stereo(0), RATE, "empty"),
        (np.zeros((MAX_CHANNELS + 1, 2048), np.float32), RATE, "channels"),
        (stereo(), 2_000_000_000, "Hz"),
        (stereo(), 0, "Hz"),
        (stereo(), -RATE, "Hz"),
        (stereo(), 44100.5, "whole number"),
        (stereo(), float("nan"), "whole number"),
        (stereo(), True, "whole number"),
        (stereo().astype(np.complex64), RATE, "real numbers"),
        (np.full((2, 2048), 1e39), RATE, "NaN or infinite"),
    ],
)
def test_arrays_an_engine_cannot_handle_are_refused(
    engine: Engine, audio: np.ndarray, rate: float, reason: str
):
    with pytest.raises(EngineError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        engine.separate(audio, rate)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_refused(engine: Engine, bad: float):
    audio = stereo()
    audio[1, 7] = bad
    with pytest.raises(EngineError, match="NaN or infinite"):
        engine.separate(audio, RATE)


def test_the_hosted_emulation_goes_through_the_same_checks():
    with pytest.raises(EngineError, match="looks like"):
        separate_as(get_engine("spectral"), stereo().T, RATE, "htdemucs_6s")


def test_valid_audio_still_separates_and_integer_rates_of_any_type_pass():
    stems = get_engine("passthrough").separate(stereo(), np.int64(RATE))  # type: ignore[arg-type]
    assert all(stem.shape == (2, 2048) for stem in stems.values())
    assert check_format(np.int32(RATE), 2) == RATE  # type: ignore[arg-type]
    assert check_format(float(RATE), 1) == RATE
