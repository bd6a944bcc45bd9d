"""The engine process's environment: the worker's, plus what the engine asks for.

The spectral engine asks for a fixed glibc mmap threshold, which keeps a long
song's memory flat (``separation_rss_growth_mb`` in docs/topics/benchmarks.md);
Demucs does not (the same setting raised its peak by 186 MiB). A site that tunes
malloc itself on the worker keeps its own value.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from django_aistemsplitter.engines import isolation
from django_aistemsplitter.engines.base import FIXED_MMAP_THRESHOLD

PROBE = "import os; print(os.environ.get('MALLOC_MMAP_THRESHOLD_'))"


def _child_sees(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_the_spectral_engines_process_gets_a_fixed_64_mib_mmap_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert FIXED_MMAP_THRESHOLD == {"MALLOC_MMAP_THRESHOLD_": "67108864"}
    assert _child_sees(isolation._child_env("spectral")) == "67108864"
    # The worker itself is left alone: only the child's environment has it.
    assert "MALLOC_MMAP_THRESHOLD_" not in os.environ


@pytest.mark.parametrize("engine", ["demucs", "passthrough", "no.such.Engine"])
def test_other_engines_processes_get_the_workers_environment_only(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.setenv("AISTEMSPLITTER_PROBE", "kept")
    env = isolation._child_env(engine)
    assert _child_sees(env) == "None"
    assert env["AISTEMSPLITTER_PROBE"] == "kept"


def test_a_sites_own_malloc_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert _child_sees(isolation._child_env("spectral")) == "131072"
