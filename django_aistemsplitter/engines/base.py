"""The interface every separation engine implements.

An engine is pure computation: decoded float32 audio in (channels x samples),
named stems out at the same sample rate and length. File formats, resampling and
storage live elsewhere (:mod:`.audio`), so engines stay easy to test and swap.
What audio an engine accepts is decided in :mod:`.limits`, checked here for all.

This module also resolves engine names (:data:`~.catalog.ENGINES` or a dotted
path) to classes, so that an engine refusing a model can name the engines that
serve it without importing the package that re-exports it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from django_aistemsplitter.engines.catalog import ENGINES
from django_aistemsplitter.engines.limits import validate_audio
from django_aistemsplitter.exceptions import ConfigurationError, UnsupportedModelError
from django_aistemsplitter.loading import load_class

#: Called with a fraction in [0, 1] as work advances.
ProgressCallback = Callable[[float], None]
Stems = dict[str, np.ndarray]


def _no_progress(_fraction: float) -> None:
    return None


#: glibc's malloc with a fixed mmap threshold of 64 MiB. By default glibc serves an
#: array over 128 KiB with a mapping of its own and, each time one is freed, raises
#: that threshold to the array's size, so after the first block the same arrays come
#: from the heap, which then fragments: with the spectral engine a 15-minute song
#: peaked about 30 MiB above a 1-minute one. Fixed at 64 MiB, a block's arrays are
#: on the heap from the first block on: the heap reaches its size in the first
#: block and stays there (growth 20 MiB), at the CPU of the default. (A low fixed
#: threshold, 128 KiB, flattens it too, but maps and zeroes every array afresh:
#: some 60 % more CPU.) Other C libraries ignore the variable.
FIXED_MMAP_THRESHOLD = {"MALLOC_MMAP_THRESHOLD_": str(64 * 1024 * 1024)}


class Engine(abc.ABC):
    """Base class of separation engines.

    Subclasses set ``name``, ``models`` (model name -> stem names) and
    ``default_model``, and implement :meth:`separate_array`.
    """

    name: ClassVar[str]
    models: ClassVar[Mapping[str, tuple[str, ...]]]
    default_model: ClassVar[str]
    #: Sample rate the engine works at; ``None`` means any rate.
    sample_rate: ClassVar[int | None] = None
    #: Channel count the engine works with; ``None`` means any.
    channels: ClassVar[int | None] = None
    #: Length of the blocks :func:`~.files.separate_file` streams through the engine,
    #: in seconds: bounds memory (audio and activations) whatever the file's length.
    segment_seconds: ClassVar[float] = 30.0
    #: Overlap between consecutive blocks, cross-faded so seams are inaudible.
    overlap_seconds: ClassVar[float] = 2.0
    #: Environment variables the engine's own process starts with (the local
    #: backend separates in a child process), unless the worker's environment
    #: sets them: a site's own tuning wins. Measured per engine, e.g.
    #: :data:`FIXED_MMAP_THRESHOLD`, which flattens the spectral engine's memory but
    #: raises Demucs's peak.
    process_env: ClassVar[Mapping[str, str]] = {}

    def __init__(self, **options: Any) -> None:
        self.options = options

    def block_hop_multiple(self, model: str, sample_rate: int) -> int:
        """Streamed blocks start on multiples of this many frames (1: anywhere).

        Engines that cut their input into windows of their own override it so
        that block boundaries fall on their window grid.
        """
        return 1

    def serves(self, model: str) -> bool:
        return model in self.models

    def stem_names(self, model: str) -> tuple[str, ...]:
        self.check_model(model)
        return tuple(self.models[model])

    def check_model(self, model: str) -> None:
        """Raise :class:`UnsupportedModelError` naming the engines that do serve ``model``."""
        if self.serves(model):
            return
        others = [name for name in engines_serving(model) if name != self.name]
        hint = (
            f" Engines that serve it: {', '.join(others)}."
            if others
            else " No installed engine serves it."
        )
        raise UnsupportedModelError(
            f"The {self.name!r} engine does not serve model {model!r}; it serves "
            f"{', '.join(sorted(self.models))}.{hint}"
        )

    def separate(
        self,
        audio: np.ndarray,
        sample_rate: int,
        model: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> Stems:
        """Separate ``audio`` (channels x samples, float32) into named stems.

        Every stem has the input's shape; the model defaults to ``default_model``.
        Audio outside the bounds of :mod:`.limits` (sample rate, channels, a
        transposed or empty array, NaN or infinite samples) is an
        :class:`~django_aistemsplitter.exceptions.EngineError` before any work.
        """
        model = model or self.default_model
        self.check_model(model)
        samples, rate = validate_audio(audio, sample_rate)
        stems = self.separate_array(samples, rate, model, progress or _no_progress)
        missing = set(self.models[model]) - set(stems)
        if missing:
            raise RuntimeError(f"engine {self.name!r} did not return stems {sorted(missing)}")
        return {name: stems[name] for name in self.models[model]}

    @abc.abstractmethod
    def separate_array(
        self, audio: np.ndarray, sample_rate: int, model: str, progress: ProgressCallback
    ) -> Stems:
        """Do the work; ``model`` is already validated."""


def get_engine_class(name: str) -> type[Engine]:
    """The Engine subclass ``name`` denotes: a short name in ``ENGINES``, or a dotted path."""
    return load_class(name, ENGINES, Engine, "engine")  # type: ignore[type-abstract]


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
