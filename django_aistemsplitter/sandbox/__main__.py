"""``python -m django_aistemsplitter.sandbox [options]``: see ``--help``."""

from __future__ import annotations

import sys

from django_aistemsplitter.sandbox.config import build_parser, config_from_options
from django_aistemsplitter.sandbox.runner import run


def main(argv: list[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    run(config_from_options(vars(options)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
