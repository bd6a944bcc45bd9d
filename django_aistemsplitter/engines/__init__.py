"""Separation engines, looked up by short name or dotted path.

``get_engine("spectral")`` returns a ready engine; third parties may pass a dotted
path to their own :class:`~django_aistemsplitter.engines.base.Engine` subclass.
What audio every engine accepts is in :mod:`~django_aistemsplitter.engines.limits`.
"""

from __future__ import annotations

from typing import Any

from django_aistemsplitter.engines.base import (
    Engine,
    ProgressCallback,
    Stems,
    engines_serving,
    get_engine_class,
)
from django_aistemsplitter.engines.catalog import DEFAULT_ENGINE, ENGINES

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "Engine",
    "ProgressCallback",
    "Stems",
    "engines_serving",
    "get_engine",
    "get_engine_class",
]


def get_engine(name: str = DEFAULT_ENGINE, **options: Any) -> Engine:
    """Instantiate the engine ``name`` with engine-specific ``options``."""
    return get_engine_class(name)(**options)
