"""Speed of the spectral engine as a realtime factor, against a baseline run alongside.

    .venv/bin/python bench/speed.py [--seconds 30] [--repeats 3]

Absolute timings depend on the machine, so next to the spectral engine this
measures, in the same run and on the same clip, a plain STFT -> inverse STFT
round trip (the floor any masking method pays) and the passthrough engine. The
runs are interleaved and the best of ``--repeats`` is kept. Time is this
process's CPU time on one thread (see ``_common``): the realtime factor per core,
which other processes on a shared machine disturb far less than wall time
(the wall-clock factor is printed too).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import _common  # noqa: F401  (sets threads and sys.path)
import numpy as np

from django_aistemsplitter.engines import get_engine
from django_aistemsplitter.engines.dsp import fft_size, istft, stft
from django_aistemsplitter.sandbox.synth import make_mixture

RATE = 44100
SPECTRAL = "spectral engine"
ROUND_TRIP = "STFT round trip"


def measure(seconds: float, repeats: int) -> dict[str, tuple[float, float]]:
    """Best CPU and best wall seconds of each run on a ``seconds`` clip: name -> (cpu, wall)."""
    mix, _ = make_mixture(seconds, RATE, seed=0, voice="synth")
    n_fft = fft_size(RATE)
    spectral = get_engine("spectral")
    passthrough = get_engine("passthrough")
    runs: dict[str, Callable[[], object]] = {
        SPECTRAL: lambda: spectral.separate(mix, RATE),
        ROUND_TRIP: lambda: istft(stft(mix, n_fft), n_fft, mix.shape[1]),
        "passthrough engine": lambda: passthrough.separate(mix, RATE, "htdemucs"),
    }
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    wall: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, work in runs.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            work()
            cpu[name].append(time.process_time() - started_cpu)
            wall[name].append(time.perf_counter() - started)
    best = {name: (min(cpu[name]), min(wall[name])) for name in runs}
    assert np.isfinite([v for pair in best.values() for v in pair]).all()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    timings = measure(args.seconds, args.repeats)
    base = timings[ROUND_TRIP][0]
    print(f"{args.seconds:g} s of 44.1 kHz stereo, best of {args.repeats}, one thread")
    print(f"{'run':20} {'x realtime (CPU)':>17} {'(wall)':>8} {'cost vs STFT round trip':>24}")
    for name, (cpu, wall) in timings.items():
        print(
            f"{name:20} {args.seconds / cpu:17.1f} {args.seconds / wall:8.1f} {cpu / base:23.1f}x"
        )


if __name__ == "__main__":
    main()
