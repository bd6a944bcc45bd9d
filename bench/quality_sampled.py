"""Separation quality on songs played by recorded instruments, next to a trained anchor.

    .venv/bin/python bench/quality_sampled.py [--songs 3] [--bars 16] [--no-anchor]

Songs come from :mod:`gm_songs` (General MIDI rendered by fluidsynth, each stem
alone, so the true stems are known). For every stem it prints the SDR of the
mixture used as the estimate (the number to beat), the spectral engine's SDR and
the improvement, averaged over the songs; then the same for the anchor, the
pretrained Spleeter 2-stem model (:mod:`spleeter_anchor`), whose vocals and
accompaniment are compared with our vocals and with the sum of our other three
stems. SDR as in ``quality.py`` (``django_aistemsplitter.sandbox.synth.sdr``).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import _common  # noqa: F401  (sets threads and sys.path)
import gm_songs
import numpy as np
import spleeter_anchor

from django_aistemsplitter.engines import get_engine
from django_aistemsplitter.sandbox.synth import sdr


@dataclass
class Scores:
    """Mean SDR (dB) per stem of each method, and the mixture's own SDR per stem."""

    songs: list[str] = field(default_factory=list)
    mixture: dict[str, list[float]] = field(default_factory=dict)
    spectral: dict[str, list[float]] = field(default_factory=dict)
    anchor: dict[str, list[float]] = field(default_factory=dict)
    anchor_error: str = ""
    seconds: dict[str, float] = field(default_factory=dict)

    @staticmethod
    def _add(table: dict[str, list[float]], name: str, value: float) -> None:
        table.setdefault(name, []).append(value)

    def mean(self, table: dict[str, list[float]], name: str) -> float:
        return float(np.mean(table[name]))

    def improvement(self, table: dict[str, list[float]], name: str) -> float:
        return self.mean(table, name) - self.mean(self.mixture, name)


def evaluate(songs: int, bars: int, anchor: bool = True, first_seed: int = 1) -> Scores:
    scores = Scores()
    engine = get_engine("spectral")
    model: spleeter_anchor.SpleeterAnchor | None = None
    if anchor:
        try:
            model = spleeter_anchor.SpleeterAnchor()
        except spleeter_anchor.AnchorUnavailable as exc:
            scores.anchor_error = str(exc)
    timing = {"render": 0.0, "spectral": 0.0, "anchor": 0.0, "audio": 0.0}
    for seed in range(first_seed, first_seed + songs):
        song = gm_songs.compose(seed, bars)
        started = time.perf_counter()
        mix, stems = gm_songs.render(song)
        timing["render"] += time.perf_counter() - started
        timing["audio"] += mix.shape[1] / gm_songs.RATE
        scores.songs.append(song.describe())
        accompaniment = stems["drums"] + stems["bass"] + stems["other"]
        truth = {**stems, "accompaniment": accompaniment}
        for name, reference in truth.items():
            scores._add(scores.mixture, name, sdr(reference, mix))
        started = time.perf_counter()
        ours = engine.separate(mix, gm_songs.RATE)
        timing["spectral"] += time.perf_counter() - started
        ours["accompaniment"] = ours["drums"] + ours["bass"] + ours["other"]
        for name, reference in truth.items():
            scores._add(scores.spectral, name, sdr(reference, ours[name]))
        if model is not None:
            started = time.perf_counter()
            theirs = model.separate(mix)
            timing["anchor"] += time.perf_counter() - started
            for name in spleeter_anchor.SOURCES:
                scores._add(scores.anchor, name, sdr(truth[name], theirs[name]))
    scores.seconds = timing
    return scores


def table(scores: Scores) -> list[str]:
    lines = [f"{'stem':14} {'mixture SDR':>12} {'spectral SDR':>13} {'improvement':>12}"]
    for name in (*gm_songs.STEMS, "accompaniment"):
        base = scores.mean(scores.mixture, name)
        ours = scores.mean(scores.spectral, name)
        lines.append(f"{name:14} {base:12.2f} {ours:13.2f} {ours - base:12.2f}")
    if scores.anchor:
        lines.append("")
        lines.append(
            f"{'anchor stem':14} {'mixture SDR':>12} {'Spleeter SDR':>13} {'improvement':>12}"
        )
        for name in spleeter_anchor.SOURCES:
            base = scores.mean(scores.mixture, name)
            theirs = scores.mean(scores.anchor, name)
            lines.append(f"{name:14} {base:12.2f} {theirs:13.2f} {theirs - base:12.2f}")
    else:
        lines.append(f"anchor skipped: {scores.anchor_error or 'not asked for'}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=3)
    parser.add_argument("--bars", type=int, default=16)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--no-anchor", action="store_true")
    args = parser.parse_args()
    scores = evaluate(args.songs, args.bars, not args.no_anchor, args.first_seed)
    print(f"{args.songs} General MIDI songs of {args.bars} bars, fluidsynth + FluidR3_GM:")
    for song in scores.songs:
        print(f"  {song}")
    print("\n".join(table(scores)))
    print(", ".join(f"{k} {v:.1f} s" for k, v in scores.seconds.items()))


if __name__ == "__main__":
    main()
