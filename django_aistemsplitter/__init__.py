"""django-aistemsplitter: split songs into stems from Django.

The package root stays import-light: the API client, the sandbox and the engines
must be usable without configured Django settings, so Django-bound helpers
(``split``, ``register``) are resolved lazily on first access.
"""

from __future__ import annotations

from typing import Any

from django_aistemsplitter._version import __version__

__all__ = ["__version__", "register", "split"]


def __getattr__(name: str) -> Any:
    if name == "split":
        from django_aistemsplitter.services import split

        return split
    if name == "register":
        from django_aistemsplitter.registry import register

        return register
    raise AttributeError(f"module 'django_aistemsplitter' has no attribute {name!r}")
