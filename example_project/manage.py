#!/usr/bin/env python
"""The example project's manage.py; run it from this directory."""

import os
import sys
from pathlib import Path


def main() -> None:
    here = Path(__file__).resolve().parent
    # The package lives one level up; a fresh clone runs without installing it.
    sys.path.insert(0, str(here.parent))
    sys.path.insert(0, str(here))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
