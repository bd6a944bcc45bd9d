"""Speed of the spectral engine as a realtime factor, against a baseline run alongside.

    .venv/bin/python bench/speed.py [--seconds 30] [--repeats 3]

Absolute timings depend on the machine, so next to the spectral engine this
measures, in the same run and on the same clip, a plain STFT -> inverse STFT
round trip (the floor any masking method pays) and the passthrough engine. The
best of ``--repeats`` runs is kept. One thread (see ``_common``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import _common  # noqa: F401  (sets threads and sys.path)
import numpy as np

from django_aistemsplitter.engines import get_engine
from django_aistemsplitter.engines.dsp import fft_size, istft, stft
from django_aistemsplitter.engines.synth import make_mixture

RATE = 44100


def best_time(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    mix, _ = make_mixture(args.seconds, RATE, seed=0, voice="synth")
    n_fft = fft_size(RATE)
    spectral = get_engine("spectral")
    passthrough = get_engine("passthrough")
    runs: dict[str, Callable[[], object]] = {
        "spectral engine": lambda: spectral.separate(mix, RATE),
        "STFT round trip": lambda: istft(stft(mix, n_fft), n_fft, mix.shape[1]),
        "passthrough engine": lambda: passthrough.separate(mix, RATE, "htdemucs"),
    }
    timings = {name: best_time(work, args.repeats) for name, work in runs.items()}
    base = timings["STFT round trip"]
    print(f"{args.seconds:g} s of 44.1 kHz stereo, best of {args.repeats}, one thread")
    print(f"{'run':20} {'x realtime':>11} {'cost vs STFT round trip':>24}")
    for name, seconds in timings.items():
        print(f"{name:20} {args.seconds / seconds:11.1f} {seconds / base:23.1f}x")
    assert np.isfinite(list(timings.values())).all()


if __name__ == "__main__":
    main()
