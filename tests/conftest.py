from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from django_aistemsplitter.engines.audio import write_audio
from tests.sandbox_process import SandboxProcess, start_sandbox


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """One sandbox for the session: passthrough engine, no injected faults."""
    proc = start_sandbox(tmp_path_factory.mktemp("sandbox"))
    yield proc
    proc.stop()


@pytest.fixture
def sandbox_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., SandboxProcess]]:
    """Start sandboxes with switches (``fail_rate=0.3``, ``processing_seconds=2`` ...)."""
    started: list[SandboxProcess] = []

    def make(**options: Any) -> SandboxProcess:
        proc = start_sandbox(tmp_path_factory.mktemp("sandbox"), **options)
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.stop()


def make_wav(path: Path, seconds: float = 2.0, rate: int = 44100, channels: int = 2) -> Path:
    """A short, deterministic stereo tone mix written as 16-bit WAV."""
    t = np.arange(int(seconds * rate)) / rate
    left = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 55 * t)
    right = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.1 * np.sin(2 * np.pi * 55 * t)
    audio = np.stack([left, right][:channels]).astype(np.float32)
    write_audio(path, audio, rate, "wav")
    return path


@pytest.fixture
def wav_file(tmp_path: Path) -> Path:
    return make_wav(tmp_path / "song.wav")
