"""Separation quality of the spectral engine on generated songs, as an SDR table.

    .venv/bin/python bench/quality.py [--seconds 20] [--seeds 1 2 3] [--voice auto]

For every stem it prints the SDR of the "mixture baseline" (the mix itself used
as the estimate, the number to beat), the spectral engine's SDR and the
improvement, averaged over the seeds. SDR is the plain signal-to-distortion
ratio over the whole clip (see ``django_aistemsplitter.sandbox.synth.sdr``).
"""

from __future__ import annotations

import argparse

import _common  # noqa: F401  (sets threads and sys.path)
import numpy as np

from django_aistemsplitter.engines import get_engine
from django_aistemsplitter.sandbox.synth import STEMS, make_mixture, sdr


def evaluate(seconds: float, seeds: list[int], voice: str) -> dict[str, tuple[float, float]]:
    """Stem -> (mixture SDR, spectral SDR), each averaged over ``seeds``."""
    engine = get_engine("spectral")
    scores: dict[str, list[tuple[float, float]]] = {name: [] for name in STEMS}
    for seed in seeds:
        mix, sources = make_mixture(seconds, 44100, seed, voice=voice)
        stems = engine.separate(mix, 44100)
        for name in STEMS:
            scores[name].append((sdr(sources[name], mix), sdr(sources[name], stems[name])))
    return {name: tuple(np.mean(values, axis=0)) for name, values in scores.items()}  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--voice", choices=["auto", "espeak", "synth"], default="auto")
    args = parser.parse_args()
    table = evaluate(args.seconds, args.seeds, args.voice)
    print(f"spectral engine, {args.seconds:g} s songs, seeds {args.seeds}, voice={args.voice}")
    print(f"{'stem':8} {'mixture SDR':>12} {'spectral SDR':>13} {'improvement':>12}")
    for name, (baseline, spectral) in table.items():
        print(f"{name:8} {baseline:12.2f} {spectral:13.2f} {spectral - baseline:12.2f}")


if __name__ == "__main__":
    main()
