"""Resolve a short name or a dotted path to a class, as backends and engines both need.

Settings name a backend or an engine either by a short name ("hosted", "spectral")
or by the dotted path of a user's own subclass; both resolve here, with one kind
of error that says what was asked for and what would work.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TypeVar

from django_aistemsplitter.exceptions import ConfigurationError

T = TypeVar("T")


def load_class(name: str, aliases: Mapping[str, str], base: type[T], kind: str) -> type[T]:
    """The class ``name`` denotes: an alias in ``aliases`` or a dotted path.

    Raises :class:`ConfigurationError` when it cannot be imported or is not a
    subclass of ``base``; ``kind`` ("backend", "engine") words the message.
    """
    path = aliases.get(name, name)
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ConfigurationError(
            f"Unknown {kind} {name!r}: use one of {', '.join(sorted(aliases))} or a dotted "
            f"path to a {base.__name__} subclass."
        )
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"Cannot load {kind} {name!r} ({path}): {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigurationError(f"{path} is not a {base.__name__} subclass")
    return cls
