"""Separation engines, looked up by short name or dotted path.

``get_engine("spectral")`` returns a ready engine; third parties may pass a dotted
path to their own :class:`~django_aistemsplitter.engines.base.Engine` subclass.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from django_aistemsplitter import contract
from django_aistemsplitter.engines.base import Engine, ProgressCallback, Stems
from django_aistemsplitter.exceptions import ConfigurationError
from django_aistemsplitter.loading import load_class

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "Engine",
    "engines_serving",
    "get_engine",
    "get_engine_class",
    "separate_as",
]

#: Short name -> dotted path of the engine class.
ENGINES: dict[str, str] = {
    "spectral": "django_aistemsplitter.engines.spectral.SpectralEngine",
    "demucs": "django_aistemsplitter.engines.demucs.DemucsEngine",
    "passthrough": "django_aistemsplitter.engines.passthrough.PassthroughEngine",
}
#: The embedded default: needs no weights and no network.
DEFAULT_ENGINE = "spectral"


def get_engine_class(name: str) -> type[Engine]:
    return load_class(name, ENGINES, Engine, "engine")  # type: ignore[type-abstract]


def get_engine(name: str = DEFAULT_ENGINE, **options: Any) -> Engine:
    """Instantiate the engine ``name`` with engine-specific ``options``."""
    return get_engine_class(name)(**options)


def engines_serving(model: str) -> list[str]:
    """Short names of the built-in engines whose class declares ``model``."""
    found = []
    for short in ENGINES:
        try:
            cls = get_engine_class(short)
        except ConfigurationError:
            continue
        if model in cls.models:
            found.append(short)
    return found


def separate_as(
    engine: Engine,
    audio: np.ndarray,
    sample_rate: int,
    model: str,
    progress: ProgressCallback | None = None,
) -> tuple[Stems, str]:
    """Produce the stems of hosted ``model`` with whatever ``engine`` runs.

    The sandbox stands in for the hosted service, so it must answer every hosted
    model name. When the engine serves ``model`` it runs it; otherwise it runs the
    engine's default model and derives the missing stem names from its residual
    ("other") so the stems still sum to the mix. Returns the stems and the engine
    model that really ran.
    """
    model = contract.normalize_model(model)
    wanted = contract.stems_for(model) if model in contract.MODELS else engine.stem_names(model)
    if engine.serves(model):
        return engine.separate(audio, sample_rate, model, progress), model
    ran = engine.default_model
    stems = engine.separate(audio, sample_rate, ran, progress)
    from django_aistemsplitter.engines.emulate import derive_stems

    return derive_stems(stems, wanted, sample_rate), ran
