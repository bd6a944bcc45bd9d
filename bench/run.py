"""Every benchmark figure in one run, each against a baseline measured in the same run.

    .venv/bin/python bench/run.py [--quick] [--only NAME ...] [--json PATH]
    .venv/bin/python bench/run.py --list
    .venv/bin/python bench/run.py --table PATH          # a JSON file as a Markdown table

Starts what the figures need (a fresh PostgreSQL database, the sandbox API, the
bench project under gunicorn, Celery workers on Redis, a moto S3 server) and
stops it all at the end. Prints one line per figure, ``name: value unit
(baseline ...)``, with the goal and the verdict, and writes
``{"name": {"value", "unit", "baseline", "goal", "notes", "met"}}`` to ``--json``.
A figure whose service does not answer is skipped with the reason in its notes
(value ``null``). ``--quick`` uses shorter songs, fewer jobs and fewer repeats:
under 3 minutes on 2 cores; a full run takes under 30.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (sets threads and sys.path)
import fig_api  # noqa: F401  (figures register themselves)
import fig_client  # noqa: F401
import fig_engines  # noqa: F401
import fig_ingest  # noqa: F401
import fig_pipeline  # noqa: F401
import fig_uploads  # noqa: F401
import fig_webhooks  # noqa: F401
from harness import DEFAULT_BROKER, DEFAULT_DB, FIGURES, Context, Figure, Result, Skip

#: Figures that mostly wait: they run in a thread alongside the others.
BACKGROUND = {"poll_calls_120s"}


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def verdict(result: Result) -> str:
    return {True: "met", False: "MISSED", None: "-"}[result.met]


def line(fig: Figure, result: Result) -> str:
    return (
        f"{fig.name}: {fmt(result.value)} {fig.unit} (baseline {result.baseline}) "
        f"[goal {fig.goal}: {verdict(result)}]"
    )


def run_one(fig: Figure, ctx: Context) -> tuple[Result, float]:
    started = time.monotonic()
    try:
        result = fig.func(ctx)
    except Skip as exc:
        result = Result(None, "-", f"skipped: {exc}")
    except Exception as exc:  # a broken figure must not hide the others
        traceback.print_exception(exc, limit=-8, chain=False)
        result = Result(None, "-", f"failed: {type(exc).__name__}: {exc}")
    return result, time.monotonic() - started


def as_json(fig: Figure, result: Result) -> dict[str, Any]:
    return {
        "value": None if result.value is None else float(result.value),
        "unit": fig.unit,
        "baseline": result.baseline,
        "goal": fig.goal,
        "notes": result.notes,
        "met": None if result.met is None else bool(result.met),
    }


def markdown(data: dict[str, dict[str, Any]]) -> str:
    rows = [
        "| figure | value | unit | baseline (same run) | goal | met |",
        "| --- | ---: | --- | --- | --- | --- |",
    ]
    for name, entry in data.items():
        met = {True: "yes", False: "**no**", None: "-"}[entry.get("met")]
        rows.append(
            f"| `{name}` | {fmt(entry['value'])} | {entry['unit']} | {entry['baseline']} | "
            f"{entry['goal']} | {met} |"
        )
    return "\n".join(rows)


def machine() -> str:
    """CPUs, CPU model, memory and load: what the figures were measured on."""
    model, memory = "?", "? RAM"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
        model = next(t.split(":", 1)[1].strip() for t in cpuinfo if t.startswith("model name"))
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        mem_kib = next(int(t.split()[1]) for t in meminfo if t.startswith("MemTotal:"))
        memory = f"{mem_kib / 1024**2:.1f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model}), {memory}, load average {load}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: under 3 minutes")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these figures")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--list", action="store_true", help="list the figures and exit")
    parser.add_argument("--table", type=Path, help="print a results JSON as Markdown, exit")
    parser.add_argument(
        "--db", default=os.environ.get("AISTEMSPLITTER_BENCH_DB", DEFAULT_DB), help="PostgreSQL"
    )
    parser.add_argument(
        "--broker", default=os.environ.get("CELERY_BROKER_URL", DEFAULT_BROKER), help="Redis URL"
    )
    parser.add_argument("--keep", type=Path, help="scratch directory to keep (logs, files)")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="write the profiles figures can take here"
    )
    args = parser.parse_args(argv)

    if args.table:
        print(markdown(json.loads(args.table.read_text())))
        return 0
    ordered = sorted(FIGURES.values(), key=lambda f: (f.order, f.name))
    if args.list:
        for fig in ordered:
            print(f"{fig.name:36} {fig.unit:14} goal {fig.goal}")
        return 0
    if args.only:
        unknown = sorted(set(args.only) - set(FIGURES))
        if unknown:
            parser.error(f"unknown figure(s): {', '.join(unknown)} (see --list)")
        ordered = [f for f in ordered if f.name in args.only]

    scratch_dir = args.keep or Path(tempfile.mkdtemp(prefix="aistemsplitter-bench-"))
    scratch_dir.mkdir(parents=True, exist_ok=True)
    ctx = Context(quick=args.quick, scratch=scratch_dir, db_name=args.db, broker_url=args.broker)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        ctx.profile_dir = args.profile.resolve()
    results: dict[str, tuple[Result, float]] = {}
    started = time.monotonic()
    mode = "quick" if args.quick else "full"
    print(f"bench/run.py: {len(ordered)} figure(s), {mode} run, scratch {scratch_dir}", flush=True)
    print(f"machine: {machine()}", flush=True)

    def report(fig: Figure, result: Result, seconds: float) -> None:
        print(line(fig, result), f"({seconds:.0f} s)", flush=True)
        if result.notes:
            print(f"    {result.notes}", flush=True)

    threads = []
    for fig in [f for f in ordered if f.name in BACKGROUND]:

        def work(fig: Figure = fig) -> None:
            results[fig.name] = run_one(fig, ctx)

        thread = threading.Thread(target=work, name=fig.name, daemon=True)
        thread.start()
        threads.append((fig, thread))
    try:
        for fig in ordered:
            if fig.name in BACKGROUND:
                continue
            results[fig.name] = run_one(fig, ctx)
            report(fig, *results[fig.name])
        for fig, thread in threads:
            thread.join()
            report(fig, *results[fig.name])
    finally:
        ctx.close()
        if args.keep is None:
            import shutil

            shutil.rmtree(scratch_dir, ignore_errors=True)

    data = {fig.name: as_json(fig, results[fig.name][0]) for fig in ordered}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    missed = [name for name, entry in data.items() if entry["met"] is False]
    skipped = [n for n, e in data.items() if e["notes"].startswith("skipped: ")]
    failed = [n for n, e in data.items() if e["notes"].startswith("failed: ")]
    print(f"machine at the end: {machine()}")
    print(
        f"done in {time.monotonic() - started:.0f} s: {len(data)} figures, "
        f"{len(missed)} goal(s) missed{': ' + ', '.join(missed) if missed else ''}, "
        f"{len(skipped)} skipped{': ' + ', '.join(skipped) if skipped else ''}, "
        f"{len(failed)} failed{': ' + ', '.join(failed) if failed else ''}"
    )
    # A missed goal is a finding, a skipped figure a missing service; a figure that
    # broke is a bug of the benchmark (or of what it measures): the run is not green.
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
