from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from django_aistemsplitter.engines.audio import write_audio
from tests.celery_app import app as celery_app
from tests.sandbox_process import SandboxProcess, start_sandbox

# The reliability record (docs/reliability.md): the ``reliability`` marker,
# ``record_reliability()`` and the page written at the end of a full run.
pytest_plugins = ["tests.reliability"]

# Imported at collection, like a project's ``proj/__init__.py`` imports its Celery
# app: shared tasks bind to the current app, and it must be ours before any test
# (or the live server) sends one, or they go to a default app with no broker.
assert celery_app.main == "tests"


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


@pytest.fixture
def media_root(settings: Any, tmp_path: Path) -> Path:
    """A fresh MEDIA_ROOT for the test, so stored files can be listed and compared."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


@pytest.fixture
def celery_eager() -> Iterator[None]:
    """Run tasks inline (only where no worker is the point of the test)."""
    old = (celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates)
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = old


@pytest.fixture
def clear_cache() -> Iterator[None]:
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
