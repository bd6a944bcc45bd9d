"""``manage.py aistemsplitter_sandbox``: the sandbox API server from a Django project.

It declares its options with the sandbox's own :func:`add_arguments`, so the
command and ``python -m django_aistemsplitter.sandbox`` never drift apart.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from django_aistemsplitter.sandbox.config import add_arguments, config_from_options
from django_aistemsplitter.sandbox.runner import run


class Command(BaseCommand):
    help = "Run a local stand-in for the AiStemSplitter API (with fault switches)."
    # A development server for the remote API: the project's own checks are not its concern.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        run(config_from_options(options), out=self.stderr)
