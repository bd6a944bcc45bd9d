"""Our demucs engine against the demucs command line, on the same model repo and song.

    .venv/bin/python bench/demucs_vs_cli.py [--seconds 30] [--small] [--shifts 1]
        [--overlap 0.25] [--segment N] [--threads 1] [--repeats 1] [--keep DIR]

No weights can be downloaded, so the script builds a ``--repo`` directory the way
the real release lays it out: demucs's own bag definition ``htdemucs.yaml`` (copied
from the installed package) and ``<sig>.th`` for the signature that bag names,
holding a randomly initialised ``HTDemucs`` with the architecture of the released
model (see ``HTDEMUCS_KWARGS``; ``--small`` swaps in a tiny one for a quick run).
``demucs.pretrained.get_model("htdemucs", repo=...)`` loads it exactly as it would
load the real file; only the weights are random, which changes neither speed nor
memory.

Each side runs in a fresh interpreter on the same generated song (44.1 kHz stereo
16-bit WAV); with ``--repeats`` the two sides alternate, so a change in the
machine's load hits both, and the fastest run of each is kept:

* ours: ``separate_file(get_engine("demucs", repo=..., device="cpu", ...), ...)``,
  the path the local backend takes (block streaming, 16-bit WAV stems);
* the CLI: ``python -m demucs.separate --repo DIR -n htdemucs -d cpu ...`` run
  through ``runpy`` in the child, so that the child can seed ``random`` first (see
  below) and read its own peak RSS afterwards. ``--clip-mode none`` makes the CLI
  clip at +-1 like our writer instead of rescaling a loud stem; stems stay 16-bit.

Both children call ``random.seed(0)`` before anything else: with ``shifts >= 1``
``demucs.apply.apply_model`` draws its time shift from Python's ``random``, so
unseeded runs differ from each other (CLI against CLI too) by far more than the
two implementations do.

Reported: wall time of each process (interpreter start, imports, model load,
decode, separation, encode), x realtime (audio seconds per wall second), peak RSS
(``VmHWM`` from /proc/self/status, as in ``memory.py``) and ours/CLI ratios, plus
a row that only imports and loads the model (the fixed cost both pay). Then per
stem: frames written by each side, the largest absolute sample difference and
the agreement of our stem with the CLI's in dB (10 log10 |cli|^2 / |ours - cli|^2),
also once our stem's constant offset from the CLI's is removed ("no DC").
One 16-bit step is 3.1e-5; the two writers round differently, so a difference
of about one step is the floor. One thread by default (``_common``), as the other
benchmarks; ``--threads`` raises it for both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import _common
import numpy as np
import soundfile as sf
import yaml

from django_aistemsplitter.sandbox.synth import write_demo_song

MODEL = "htdemucs"
#: The released htdemucs (signature 955717e8, from demucs's ``remote/htdemucs.yaml``):
#: the ``htdemucs`` section of demucs's training config (the ``HTDemucs`` defaults)
#: with the overrides of its experiment grid (``demucs/grids/mmi.py``: dconv_mode 3,
#: depth 4, t_dropout 0.02, t_layers 5, bottom_channels 512), trained on
#: 10 s * 0.88 - 1 s = 7.8 s segments, which is what ``max_allowed_segment`` reports
#: for the real file. That makes 41,984,456 parameters: ~84 MB in half precision,
#: the size of the published file.
HTDEMUCS_KWARGS = {
    "sources": ["drums", "bass", "other", "vocals"],
    "audio_channels": 2,
    "samplerate": 44100,
    "segment": Fraction(39, 5),
    "dconv_mode": 3,
    "depth": 4,
    "t_dropout": 0.02,
    "t_layers": 5,
    "bottom_channels": 512,
}
#: ``--small``: same sources, rate, segment, STFT and depth (so the transformer sees
#: as many tokens), 8 channels and one single-head layer: ~100x fewer parameters.
SMALL_KWARGS = {
    **HTDEMUCS_KWARGS,
    "channels": 8,
    "t_layers": 1,
    "t_heads": 1,
    "bottom_channels": 0,
}

PEAK = (
    _common.PEAK_SOURCE
    + """
import os, random, sys, time
random.seed(0)
"""
)
OURS = (
    PEAK
    + """
import json
from django_aistemsplitter.engines import get_engine
from django_aistemsplitter.engines.files import separate_file
song, repo, out, options = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
engine = get_engine("demucs", repo=repo, device="cpu", **options)
separate_file(engine, song, out, "htdemucs")
print(peak())
"""
)
CLI = (
    PEAK
    + """
import runpy
sys.argv = ["demucs", *sys.argv[1:]]
runpy.run_module("demucs.separate", run_name="__main__", alter_sys=True)
print(peak())
"""
)
LOAD_ONLY = (
    PEAK
    + """
from pathlib import Path
from demucs.pretrained import get_model
get_model("htdemucs", repo=Path(sys.argv[1]))
print(peak())
"""
)


def build_repo(directory: Path, small: bool) -> tuple[str, int]:
    """Write demucs's ``htdemucs.yaml`` and a random ``<sig>.th``; (sig, parameter count)."""
    import torch
    from demucs.htdemucs import HTDemucs
    from demucs.pretrained import REMOTE_ROOT

    bag = Path(REMOTE_ROOT) / f"{MODEL}.yaml"
    with open(bag) as fh:
        (sig,) = yaml.safe_load(fh)["models"]
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(bag, directory / bag.name)
    torch.manual_seed(0)
    model = HTDemucs(**(SMALL_KWARGS if small else HTDEMUCS_KWARGS))
    args, kwargs = model._init_args_kwargs
    # Half-precision state, as demucs.states.serialize_model stores the release.
    state = {k: v.detach().to(dtype=torch.half) for k, v in model.state_dict().items()}
    package = {"klass": HTDemucs, "args": args, "kwargs": kwargs, "state": state}
    torch.save(package, directory / f"{sig}.th")
    return sig, sum(p.numel() for p in model.parameters())


def run(code: str, *args: str, env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``code`` in a fresh interpreter: (wall seconds, peak RSS MiB, stderr)."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=_common.ROOT,
        env=env,
    )
    wall = time.perf_counter() - started
    if out.returncode:
        raise SystemExit(f"child failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return wall, int(out.stdout.split()[-1]) / 1024, out.stderr


def fastest(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """The fastest wall time of ``runs`` and the largest peak RSS seen."""
    return min(wall for wall, _ in runs), max(mib for _, mib in runs)


def best(code: str, *args: str, env: dict[str, str], repeats: int) -> tuple[float, float]:
    """Fastest wall time of ``repeats`` runs and the largest peak RSS seen."""
    return fastest([run(code, *args, env=env)[:2] for _ in range(repeats)])


def read_stems(directory: Path) -> dict[str, np.ndarray]:
    return {
        p.stem: sf.read(p, dtype="float64", always_2d=True)[0].T
        for p in sorted(directory.glob("*.wav"))
    }


def agreement_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    error = float(np.sum((reference - estimate) ** 2))
    power = float(np.sum(reference**2))
    return float("inf") if error == 0 else 10.0 * np.log10((power + 1e-20) / error)


def compare(ours_dir: Path, cli_dir: Path, song: Path) -> list[str]:
    mix = sf.read(song, dtype="float64", always_2d=True)[0].T
    frames, mix_mean = mix.shape[-1], float(mix.mean())
    ours, cli = read_stems(ours_dir), read_stems(cli_dir)
    lines = [
        f"{'stem':8} {'frames ours':>12} {'frames CLI':>11} {'max |d|':>9} {'mean d':>10} "
        f"{'max |d - mean d|':>17} {'agree dB':>9} {'no DC':>6} {'peak |CLI|':>11}"
    ]
    for name in sorted(set(ours) | set(cli)):
        if name not in ours or name not in cli:
            side = "ours" if name in ours else "the CLI"
            lines.append(f"{name:8} only written by {side}")
            continue
        a, b = ours[name], cli[name]
        n = min(a.shape[-1], b.shape[-1])
        d = a[:, :n] - b[:, :n]
        lines.append(
            f"{name:8} {a.shape[-1]:12d} {b.shape[-1]:11d} {np.max(np.abs(d)):9.2e} "
            f"{d.mean():10.2e} {np.max(np.abs(d - d.mean())):17.2e} "
            f"{agreement_db(b[:, :n], a[:, :n]):9.1f} "
            f"{agreement_db(b[:, :n], a[:, :n] - d.mean()):6.1f} {float(np.max(np.abs(b))):11.3f}"
        )
    same = sorted(ours) == sorted(cli) and len(ours) == 4
    lengths = {s.shape[-1] for s in (*ours.values(), *cli.values())}
    lines.append(f"d = ours - CLI; 16-bit step 3.05e-05; the song's mean (DC) is {mix_mean:.2e}")
    lines.append(
        f"4 stems on both sides with the same names: {'yes' if same else 'NO'}; "
        f"all {frames} frames long: {'yes' if lengths == {frames} else f'NO {sorted(lengths)}'}"
    )
    return lines


@dataclass
class Comparison:
    """One comparison: (wall s, peak RSS MiB) of each side, and the stem table."""

    seconds: float
    small: bool
    sig: str
    params: int
    threads: str
    load: tuple[float, float]
    ours: tuple[float, float]
    cli: tuple[float, float]
    stems: list[str]


def compare_with_cli(
    seconds: float,
    *,
    small: bool = False,
    shifts: int = 1,
    overlap: float = 0.25,
    segment: int | None = None,
    threads: int | None = None,
    repeats: int = 1,
    keep: Path | None = None,
    with_cli: bool = True,
) -> Comparison:
    """Run both sides on a generated ``seconds`` song (``with_cli=False``: ours only)."""
    env = dict(os.environ)
    env.pop("DEMUCS_REPO", None)
    if threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    options = {"shifts": shifts, "overlap": overlap, "segment": segment}
    cli_flags = ["-d", "cpu", "--shifts", str(shifts), "--overlap", str(overlap)]
    if segment is not None:
        cli_flags += ["--segment", str(segment)]

    with tempfile.TemporaryDirectory() as scratch:
        work = keep or Path(scratch)
        repo = work / "repo"
        sig, params = build_repo(repo, small)
        song = write_demo_song(work / "song.wav", seconds)
        ours_out, cli_out = work / "ours", work / "cli"
        load = best(LOAD_ONLY, str(repo), env=env, repeats=repeats)
        ours_args = [str(song), str(repo), str(ours_out), json.dumps(options)]
        cli_args = ["--repo", str(repo), "-n", MODEL, *cli_flags, "--clip-mode", "none"]
        cli_args += ["-o", str(cli_out), str(song)]
        # Alternate the two sides, so a change in the machine's load hits both.
        ours_runs, cli_runs = [], []
        for _ in range(repeats):
            ours_runs.append(run(OURS, *ours_args, env=env)[:2])
            if with_cli:
                cli_runs.append(run(CLI, *cli_args, env=env)[:2])
        ours = fastest(ours_runs)
        cli, stems = (float("nan"), float("nan")), []
        if with_cli:
            cli = fastest(cli_runs)
            stems = compare(ours_out, cli_out / MODEL / song.stem, song)
    return Comparison(
        seconds, small, sig, params, env.get("OMP_NUM_THREADS", "?"), load, ours, cli, stems
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--small", action="store_true", help="tiny random model, quick run")
    parser.add_argument("--shifts", type=int, default=1)
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument(
        "--segment", type=int, default=None, help="seconds (the CLI takes whole seconds)"
    )
    parser.add_argument("--threads", type=int, default=None, help="default: _common's (1)")
    parser.add_argument("--repeats", type=int, default=1, help="keep the fastest")
    parser.add_argument("--keep", type=Path, help="build the repo and outputs here, keep them")
    args = parser.parse_args()
    result = compare_with_cli(
        args.seconds,
        small=args.small,
        shifts=args.shifts,
        overlap=args.overlap,
        segment=args.segment,
        threads=args.threads,
        repeats=args.repeats,
        keep=args.keep,
    )
    load, ours, cli = result.load, result.ours, result.cli
    size = "--small model" if args.small else "full-size architecture"
    segment = f"{args.segment} s" if args.segment else "model default (7.8 s)"
    print(
        f"{MODEL} ({result.sig}.th, {size}, {result.params:,} parameters, random weights); "
        f"{args.seconds:g} s song, 44.1 kHz stereo; cpu, {result.threads} thread(s); "
        f"shifts {args.shifts}, overlap {args.overlap}, segment {segment}; "
        f"best of {args.repeats}"
    )
    print(f"{'run':22} {'wall s':>8} {'x realtime':>11} {'peak RSS MiB':>13}")
    print(f"{'import + load model':22} {load[0]:8.1f} {'-':>11} {load[1]:13.0f}")
    for label, (wall, mib) in (("ours (separate_file)", ours), ("demucs CLI", cli)):
        print(f"{label:22} {wall:8.1f} {args.seconds / wall:11.2f} {mib:13.0f}")
    print(
        f"{'ours / CLI':22} {ours[0] / cli[0]:8.2f} {cli[0] / ours[0]:11.2f} "
        f"{ours[1] / cli[1]:13.2f}"
    )
    print()
    print("\n".join(result.stems))


if __name__ == "__main__":
    main()
