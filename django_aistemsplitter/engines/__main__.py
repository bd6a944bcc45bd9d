"""Split a file from the command line, without Django: the quick way to try an engine.

    python -m django_aistemsplitter.engines song.mp3 --engine spectral --format flac --out stems/

Prints a progress line while it works and the path of every stem when done.
Engine options go as ``--option key=value`` (for example ``--option repo=/models``
or ``--option device=cpu`` for the demucs engine).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from django_aistemsplitter import contract
from django_aistemsplitter.engines import DEFAULT_ENGINE, ENGINES, get_engine
from django_aistemsplitter.engines.files import separate_file
from django_aistemsplitter.exceptions import AiStemSplitterError


def _option(text: str) -> tuple[str, Any]:
    """``key=value`` with ints and floats converted, so ``shifts=2`` is an int."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            continue
    return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m django_aistemsplitter.engines",
        description="Split an audio file into stems with a local engine.",
    )
    parser.add_argument("file", type=Path, help="audio file (wav, flac, ogg, mp3)")
    parser.add_argument(
        "--engine", default=DEFAULT_ENGINE, help=f"{', '.join(ENGINES)} or a dotted path"
    )
    parser.add_argument("--model", help="model name (default: the engine's default)")
    parser.add_argument("--format", default=contract.DEFAULT_OUTPUT_FORMAT, dest="output_format")
    parser.add_argument("--out", type=Path, default=Path("stems"), help="output directory")
    parser.add_argument(
        "--option", type=_option, action="append", default=[], help="engine option key=value"
    )
    return parser


def _progress_printer(stream: Any) -> Any:
    started = time.monotonic()

    def show(fraction: float) -> None:
        elapsed = time.monotonic() - started
        stream.write(f"\rseparating {fraction * 100:5.1f}%  {elapsed:6.1f}s")
        stream.flush()

    return show


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        engine = get_engine(args.engine, **dict(args.option))
        model = args.model or engine.default_model
        result = separate_file(
            engine,
            args.file,
            args.out,
            model,
            args.output_format,
            _progress_printer(sys.stderr),
        )
    except (AiStemSplitterError, ValueError, OSError) as exc:
        sys.stderr.write(f"\nerror: {exc}\n")
        return 1
    sys.stderr.write("\n")
    for path in result.stems.values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
