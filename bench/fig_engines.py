"""Figures of the local engines: speed, quality, memory, Demucs against its own CLI.

Each wraps one of the standalone scripts next to it (``speed.py``, ``quality.py``,
``quality_sampled.py``, ``memory.py``, ``demucs_vs_cli.py``), which stay runnable
on their own for the full tables.
"""

from __future__ import annotations

import importlib.util

import demucs_vs_cli
import gm_songs
import memory
import quality
import quality_sampled
import speed
from harness import Context, Result, Skip, figure


@figure("spectral_rtf", "x realtime", ">= 50", order=10)
def spectral_rtf(ctx: Context) -> Result:
    seconds, repeats = (10.0, 3) if ctx.quick else (30.0, 5)
    timings = speed.measure(seconds, repeats)
    cpu, wall = timings[speed.SPECTRAL]
    base_cpu, _ = timings[speed.ROUND_TRIP]
    value = seconds / cpu
    return Result(
        value,
        f"STFT round trip {seconds / base_cpu:.0f}x realtime "
        f"(the engine costs {cpu / base_cpu:.1f}x it)",
        f"{seconds:g} s clip, one thread, CPU time, best of {repeats}; "
        f"wall-clock {seconds / wall:.0f}x realtime",
        met=value >= 50,
    )


@figure("quality_synth", "dB", ">= 6", order=11)
def quality_synth(ctx: Context) -> Result:
    seconds, seeds = (10.0, [1]) if ctx.quick else (20.0, [1, 2, 3])
    table = quality.evaluate(seconds, seeds, "synth")
    base, ours = table["vocals"]
    others = ", ".join(f"{name} {s - b:+.1f}" for name, (b, s) in table.items())
    return Result(
        ours - base,
        f"mixture as estimate: vocals SDR {base:.1f} dB",
        f"vocals SDR improvement of the spectral engine on generated songs ({seconds:g} s, "
        f"seeds {seeds}, formant voice); all stems: {others} dB",
        met=ours - base >= 6,
    )


@figure("quality_sampled", "dB", ">= anchor", order=12)
def quality_sampled_figure(ctx: Context) -> Result:
    try:
        gm_songs.check_available()
    except gm_songs.RenderUnavailable as exc:
        raise Skip(str(exc)) from None
    songs, bars = (1, 8) if ctx.quick else (4, 16)
    scores = quality_sampled.evaluate(songs, bars)
    ours = scores.improvement(scores.spectral, "vocals")

    def summary(table: dict[str, list[float]], names: tuple[str, ...]) -> str:
        return ", ".join(
            f"{name} {scores.mean(table, name):.1f} ({scores.improvement(table, name):+.1f})"
            for name in names
        )

    stems = summary(scores.spectral, (*gm_songs.STEMS, "accompaniment"))
    notes = f"{songs} song(s) x {bars} bars; spectral SDR (improvement) dB: {stems}"
    if not scores.anchor:
        return Result(
            ours,
            f"anchor unavailable ({scores.anchor_error})",
            notes + "; no anchor, so no verdict",
        )
    theirs = scores.improvement(scores.anchor, "vocals")
    anchor = summary(scores.anchor, ("vocals", "accompaniment"))
    return Result(
        ours,
        f"Spleeter 2-stem vocals improvement {theirs:.1f} dB",
        f"{notes}; Spleeter SDR (improvement) dB: {anchor}",
        met=ours >= theirs,
    )


@figure("separation_rss_growth_mb", "MB", "< 32", order=13)
def separation_rss(ctx: Context) -> Result:
    short, long = (60.0, 120.0) if ctx.quick else (60.0, 900.0)
    rows = memory.measure(short, long)
    imported = rows[0][2]
    short_peak, long_peak = rows[1][2], rows[2][2]
    growth = (long_peak - short_peak) * 1.048576
    return Result(
        growth,
        f"peak RSS {short_peak:.0f} MiB on a {short:g} s song",
        f"spectral engine, separate_file, fresh process each with the environment the "
        f"worker gives the engine's process (its process_env): {long:g} s song peaks at "
        f"{long_peak:.0f} MiB (imports alone {imported:.0f} MiB); growth = long - short peak",
        met=growth < 32,
    )


@figure("demucs_vs_cli", "x (CLI/ours wall)", ">= 1.0, bounded on 10 min", order=20)
def demucs_figure(ctx: Context) -> Result:
    if importlib.util.find_spec("demucs") is None:
        raise Skip("demucs is not installed (pip install -e '.[demucs]')")
    if ctx.quick:
        main = demucs_vs_cli.compare_with_cli(15.0, small=True)
        label = "--small model, 15 s song"
    else:
        main = demucs_vs_cli.compare_with_cli(30.0, repeats=2)
        label = "full-size architecture, 30 s song, best of 2"
    ratio = main.cli[0] / main.ours[0]
    notes = (
        f"{label}: ours {main.ours[0]:.1f} s, {main.ours[1]:.0f} MiB peak "
        f"(ours/CLI {main.ours[1] / main.cli[1]:.2f})"
    )
    bounded = True
    if ctx.quick:
        notes += "; the 10-minute memory check runs in the full run only"
    else:
        long = demucs_vs_cli.compare_with_cli(600.0, small=True)
        bounded = long.ours[1] <= long.cli[1]
        notes += (
            f"; 10 min song (--small): ours {long.ours[0]:.0f} s, {long.ours[1]:.0f} MiB peak, "
            f"the CLI {long.cli[0]:.0f} s, {long.cli[1]:.0f} MiB (it holds the whole song)"
        )
    return Result(
        ratio,
        f"demucs CLI {main.cli[0]:.1f} s wall, {main.cli[1]:.0f} MiB peak",
        notes,
        met=ratio >= 1.0 and bounded,
    )
