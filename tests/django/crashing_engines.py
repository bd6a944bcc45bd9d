"""Engines that die the way native code dies, named by dotted path in ``ENGINE``.

Each is the passthrough engine until it meets its trigger, mono audio (the stand-in
for an upload crafted to crash a decoder or a model), so one worker can run a
crashing job and then a healthy one. ``SlowEngine`` takes its time instead, so a
test can look at a job while its run is alive.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import time
from pathlib import Path

import numpy as np

from django_aistemsplitter.engines.base import ProgressCallback, Stems
from django_aistemsplitter.engines.passthrough import PassthroughEngine


def _no_core_dump() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class SegfaultEngine(PassthroughEngine):
    """SIGSEGV on mono input: what a crash inside a C extension looks like."""

    name = "segfault"

    def separate_array(
        self, audio: np.ndarray, sample_rate: int, model: str, progress: ProgressCallback
    ) -> Stems:
        if audio.shape[0] == 1:
            progress(0.5)
            _no_core_dump()
            os.kill(os.getpid(), signal.SIGSEGV)
        return super().separate_array(audio, sample_rate, model, progress)


class OomKilledEngine(PassthroughEngine):
    """SIGKILL on mono input: what the kernel's out-of-memory killer does."""

    name = "oom-killed"

    def separate_array(
        self, audio: np.ndarray, sample_rate: int, model: str, progress: ProgressCallback
    ) -> Stems:
        if audio.shape[0] == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().separate_array(audio, sample_rate, model, progress)


class ExitingEngine(PassthroughEngine):
    """Leaves the process with status 7 on mono input, without a word of protocol."""

    name = "exiting"

    def separate_array(
        self, audio: np.ndarray, sample_rate: int, model: str, progress: ProgressCallback
    ) -> Stems:
        if audio.shape[0] == 1:
            print("native library: fatal state, giving up", file=sys.stderr, flush=True)
            os._exit(7)
        return super().separate_array(audio, sample_rate, model, progress)


class SlowEngine(PassthroughEngine):
    """Sleeps ``seconds`` (an engine option) per block, reporting no progress meanwhile.

    With the option ``runs_dir`` each block leaves a file there, so a test can
    count how many runs (processes) separated.
    """

    name = "slow"

    def separate_array(
        self, audio: np.ndarray, sample_rate: int, model: str, progress: ProgressCallback
    ) -> Stems:
        runs_dir = self.options.get("runs_dir")
        if runs_dir:
            (Path(runs_dir) / f"run-{os.getpid()}-{time.monotonic_ns()}").touch()
        time.sleep(float(self.options.get("seconds", 3.0)))
        return super().separate_array(audio, sample_rate, model, progress)
