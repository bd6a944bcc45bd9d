"""Peak memory of streamed file separation: a short song vs. a long one.

    .venv/bin/python bench/memory.py [--short 10] [--long 900] [--engine spectral] [--whole 120]

Writes generated songs (``write_demo_song``, itself streamed) to a temporary
directory, then separates each with ``separate_file`` in a fresh Python process
and reports that process's peak resident set size (``VmHWM`` from
/proc/self/status; ``ru_maxrss`` is not used because Linux carries it over
from the forking parent across ``exec``). Because the
file is decoded, separated and encoded block by block, the long file should
peak about where the short one does. ``--whole N`` adds a contrast run that
decodes an N-second song at once and separates it in one call (no streaming).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

from django_aistemsplitter.engines import get_engine_class
from django_aistemsplitter.sandbox.synth import write_demo_song

PEAK = _common.PEAK_SOURCE
STREAMED = (
    PEAK
    + """
import sys
from django_aistemsplitter.engines import get_engine
from django_aistemsplitter.engines.files import separate_file
engine = get_engine(sys.argv[2])
separate_file(engine, sys.argv[1], sys.argv[3], engine.default_model)
print(peak())
"""
)
WHOLE = (
    PEAK
    + """
import sys
from django_aistemsplitter.engines import get_engine
from django_aistemsplitter.engines.audio import read_audio
engine = get_engine(sys.argv[2])
audio, rate = read_audio(sys.argv[1])
engine.separate(audio, rate)
print(peak())
"""
)
IMPORT_ONLY = (
    PEAK
    + """
import django_aistemsplitter.engines.files, django_aistemsplitter.engines.spectral
print(peak())
"""
)


def peak_mib(code: str, *args: str, engine: str = "spectral") -> tuple[float, float]:
    """Run ``code`` in a fresh interpreter; (peak RSS in MiB, wall seconds).

    The interpreter gets the environment a worker gives ``engine``'s process
    (its ``process_env``, e.g. glibc's malloc setting), as a worker runs it.
    """
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=_common.ROOT,
        env={**get_engine_class(engine).process_env, **os.environ},
    )
    return int(out.stdout.split()[-1]) / 1024, time.perf_counter() - started


def measure(
    short: float, long: float, engine: str = "spectral", whole: float = 0.0
) -> list[tuple[str, float, float, float]]:
    """Rows of (run, audio seconds, peak RSS MiB, wall seconds), import-only first."""
    rows = [("import only", 0.0, *peak_mib(IMPORT_ONLY, engine=engine))]
    with tempfile.TemporaryDirectory() as tmp:
        for label, seconds in (("streamed", short), ("streamed", long)):
            song = write_demo_song(Path(tmp) / f"song{seconds:g}.wav", seconds)
            peak = peak_mib(STREAMED, str(song), engine, tmp, engine=engine)
            rows.append((label, seconds, *peak))
        if whole:
            song = write_demo_song(Path(tmp) / "whole.wav", whole)
            rows.append(("whole in RAM", whole, *peak_mib(WHOLE, str(song), engine, engine=engine)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=float, default=10.0)
    parser.add_argument("--long", type=float, default=900.0)
    parser.add_argument("--engine", default="spectral")
    parser.add_argument("--whole", type=float, default=0.0)
    args = parser.parse_args()
    rows = measure(args.short, args.long, args.engine, args.whole)
    print(f"engine {args.engine}, 44.1 kHz stereo, peak RSS of a fresh process")
    print(f"{'run':14} {'audio s':>8} {'peak RSS MiB':>13} {'wall s':>8}")
    for label, seconds, mib, wall in rows:
        print(f"{label:14} {seconds:8g} {mib:13.0f} {wall:8.1f}")


if __name__ == "__main__":
    main()
