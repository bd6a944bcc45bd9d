"""The Demucs engine: the hosted service's models (htdemucs_ft, htdemucs, htdemucs_6s) run locally.

Install with ``pip install django-aistemsplitter[demucs]``; torch and demucs are
imported only when the engine is created, so the package imports without them.

Weights are never downloaded here. A separation worker that silently fetches
hundreds of megabytes (or hangs on a firewall) is worse than one that fails at
once with instructions, so the engine only reads local directories, in order:

1. the ``repo`` option, else the ``DEMUCS_REPO`` environment variable: a
   directory of ``<signature>[-<checksum>].th`` files and, optionally, bag
   definitions ``<name>.yaml`` (the layout ``demucs --repo`` uses);
2. torch hub's checkpoint cache (``$TORCH_HOME/hub/checkpoints``), where
   ``demucs`` < 4.1 stores the files it downloads;
3. the Hugging Face hub cache (``$HF_HUB_CACHE``), where ``demucs`` 4.1 stores
   ``<name>.yaml`` + ``<signature>.safetensors``.

Loading goes through Demucs's own code (``demucs.pretrained.get_model`` with a
local ``repo``, ``demucs.repo`` and ``demucs.hf`` loaders), never through a path
that may reach the network. When no directory holds every file a model needs,
:class:`ModelWeightsNotFoundError` says where it looked, which files are
missing and where to download them.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from django_aistemsplitter import contract
from django_aistemsplitter.engines.audio import fit_length, resample, to_channels
from django_aistemsplitter.engines.base import Engine, ProgressCallback, Stems
from django_aistemsplitter.exceptions import (
    ConfigurationError,
    EngineError,
    ModelWeightsNotFoundError,
)

REPO_ENV = "DEMUCS_REPO"
#: Hugging Face namespace demucs 4.1 publishes its models under.
HF_NAMESPACE = "adefossez"
INSTALL_HINT = "pip install django-aistemsplitter[demucs]"


def _demucs() -> Any:
    """Import demucs (and torch) on first use, with an install hint when missing."""
    try:
        import demucs.apply
        import demucs.hf
        import demucs.pretrained
        import demucs.repo
    except ImportError as exc:
        raise EngineError(
            f"The demucs engine needs torch and demucs: {INSTALL_HINT} ({exc})"
        ) from exc
    return demucs


@dataclass(frozen=True)
class WeightsLocation:
    """Where a model's files were found: ``kind`` is "repo" (.th files) or "hf" (safetensors)."""

    kind: str
    directory: Path
    #: True when ``directory`` holds the model's own ``<name>.yaml`` or ``<name>.th``.
    self_contained: bool


def _th_files(directory: Path) -> dict[str, Path]:
    """Signature -> file of the ``<sig>[-<checksum>].th`` files in ``directory``."""
    return {p.stem.split("-", 1)[0]: p for p in directory.glob("*.th")}


def _bag_signatures(name: str, bag_file: Path) -> list[str]:
    with open(bag_file) as fh:
        return [str(sig) for sig in yaml.safe_load(fh)["models"]]


def _packaged_bag(name: str) -> Path:
    """The bag definition demucs ships for ``name`` (``demucs/remote/<name>.yaml``)."""
    return Path(_demucs().pretrained.REMOTE_ROOT) / f"{name}.yaml"


def _signatures(name: str, directory: Path) -> tuple[list[str], bool]:
    """Signatures ``name`` needs if loaded from ``directory``, and whether it defines them."""
    own_bag = directory / f"{name}.yaml"
    if own_bag.is_file():
        return _bag_signatures(name, own_bag), True
    if name in _th_files(directory):
        return [name], True
    packaged = _packaged_bag(name)
    return (_bag_signatures(name, packaged) if packaged.is_file() else [name]), False


def torch_hub_checkpoints() -> Path:
    """torch hub's checkpoint directory, as torch computes it (honours ``TORCH_HOME``)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache directory, as huggingface_hub computes it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    hf_home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface"
    )
    return Path(hf_home) / "hub"


def _hf_model_dir(name: str) -> Path:
    return hf_hub_cache() / f"models--{HF_NAMESPACE}--{_demucs().hf.hf_repo_name(name)}"


def _hf_snapshots(name: str) -> list[Path]:
    snapshots = _hf_model_dir(name) / "snapshots"
    return sorted(snapshots.glob("*"), reverse=True) if snapshots.is_dir() else []


def _download_urls(signatures: list[str]) -> list[str]:
    """Legacy download URLs of ``signatures`` from the file list demucs ships."""
    pretrained = _demucs().pretrained
    try:
        # demucs's own parser of remote/files.txt; private, so tolerate its absence.
        urls = pretrained._parse_remote_files(Path(pretrained.REMOTE_ROOT) / "files.txt")
    except (AttributeError, OSError, ValueError, AssertionError):
        return []
    return [urls[sig] for sig in signatures if sig in urls]


class WeightsFinder:
    """Finds a model's weights in the configured directory and the users' caches."""

    def __init__(self, repo: str | os.PathLike[str] | None = None) -> None:
        configured = repo or os.environ.get(REPO_ENV)
        self.repo = Path(configured).expanduser() if configured else None

    def repo_dirs(self) -> list[Path]:
        dirs = [self.repo] if self.repo else []
        return [*dirs, torch_hub_checkpoints()]

    def find(self, name: str) -> WeightsLocation:
        """Return where ``name``'s files all are, or raise a helpful error."""
        if self.repo is not None and not self.repo.is_dir():
            raise ModelWeightsNotFoundError(
                f"The Demucs repo {self.repo} (from the 'repo' option or ${REPO_ENV}) "
                "is not a directory."
            )
        looked: list[str] = []
        needed: list[str] = []
        for directory in self.repo_dirs():
            looked.append(str(directory))
            if not directory.is_dir():
                continue
            signatures, own = _signatures(name, directory)
            needed = signatures
            if all(sig in _th_files(directory) for sig in signatures):
                return WeightsLocation("repo", directory, own)
        for snapshot in _hf_snapshots(name):
            bag = snapshot / f"{name}.yaml"
            if bag.is_file() and all(
                (snapshot / f"{sig}.safetensors").is_file() for sig in _bag_signatures(name, bag)
            ):
                return WeightsLocation("hf", snapshot, True)
        looked.append(str(_hf_model_dir(name)))
        raise ModelWeightsNotFoundError(self._missing_message(name, needed, looked))

    def _missing_message(self, name: str, needed: list[str], looked: list[str]) -> str:
        if not needed:
            packaged = _packaged_bag(name)
            needed = _bag_signatures(name, packaged) if packaged.is_file() else [name]
        urls = _download_urls(needed)
        files = ", ".join(f"{sig}-<checksum>.th" for sig in needed)
        where = "; ".join(looked)
        fetch = f" Download them from: {' '.join(urls)}." if urls else ""
        return (
            f"No weights for Demucs model {name!r}: it needs {files}, looked in {where}. "
            f"Put the files in a directory and point the 'repo' engine option or "
            f"${REPO_ENV} at it.{fetch} (Nothing is downloaded automatically.)"
        )


_LOAD_LOCK = threading.Lock()


@functools.lru_cache(maxsize=2)
def _load_model(name: str, location: WeightsLocation) -> Any:
    """Load (and keep the last two) models through Demucs's own loaders, offline."""
    demucs = _demucs()
    if location.kind == "hf":
        bag_file = location.directory / f"{name}.yaml"
        with open(bag_file) as fh:
            bag = yaml.safe_load(fh)
        models = [
            demucs.hf.load_safetensors_model(location.directory / f"{sig}.safetensors")
            for sig in bag["models"]
        ]
        model = demucs.apply.BagOfModels(models, bag.get("weights"), bag.get("segment"))
    elif location.self_contained:
        model = demucs.pretrained.get_model(name, repo=location.directory)
    else:
        # .th files in the directory, bag definition from the one demucs ships.
        files = demucs.repo.LocalRepo(location.directory)
        bags = demucs.repo.BagOnlyRepo(Path(demucs.pretrained.REMOTE_ROOT), files)
        model = demucs.repo.AnyModelRepo(files, bags).get_model(name)
    model.eval()
    return model


def _pick_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigurationError(f"device {requested!r} requested but CUDA is not available")
    return requested


class _ProgressCounter:
    """Turns demucs's per-chunk start/end callbacks into a 0..1 fraction."""

    def __init__(self, progress: ProgressCallback, expected: int) -> None:
        self.progress = progress
        self.expected = max(1, expected)
        self.done = 0

    def __call__(self, info: dict[str, Any]) -> None:
        if info.get("state") == "end":
            self.done += 1
            self.progress(min(0.99, self.done / self.expected))


class DemucsEngine(Engine):
    """Hybrid Transformer Demucs (Rouard, Massa & Defossez, ICASSP 2023) on CPU or CUDA.

    Options: ``repo`` (weights directory), ``device`` ("auto", "cpu", "cuda", "cuda:1"),
    ``segment`` (seconds per model call; at most the model's training length),
    ``overlap`` (fraction between model calls, default 0.25) and ``shifts``
    (random time-shift averaging passes; more is slower and slightly better).
    """

    name = "demucs"
    models = dict(contract.MODELS)
    default_model = contract.DEFAULT_MODEL
    sample_rate = 44100
    channels = 2
    # files.separate_file cross-fades blocks only past a margin of overlap/4 from
    # each block's edge. Each block runs its own apply_model, whose output is
    # degraded up to one model window (7.8 s for htdemucs) from the block edges,
    # so the margin (32/4 = 8 s) must exceed that window: then every cross-faded
    # sample was computed with full context by both blocks. 120 s blocks keep the
    # recomputed share at about a third.
    segment_seconds = 120.0
    overlap_seconds = 32.0

    def __init__(
        self,
        repo: str | os.PathLike[str] | None = None,
        device: str = "auto",
        segment: float | None = None,
        overlap: float = 0.25,
        shifts: int = 1,
        **options: Any,
    ) -> None:
        super().__init__(
            repo=repo, device=device, segment=segment, overlap=overlap, shifts=shifts, **options
        )
        if options:
            raise ConfigurationError(f"unknown demucs engine options: {sorted(options)}")
        if not 0.0 <= overlap < 1.0 or shifts < 0 or (segment is not None and segment <= 0):
            raise ConfigurationError("need 0 <= overlap < 1, shifts >= 0 and segment > 0")
        _demucs()
        self.finder = WeightsFinder(repo)
        self.device = _pick_device(device)
        self.segment = segment
        self.overlap = overlap
        self.shifts = shifts

    def load(self, model: str) -> Any:
        """The loaded Demucs model (or bag) for ``model``; raises when weights are missing."""
        self.check_model(model)
        location = self.finder.find(model)
        with _LOAD_LOCK:
            return _load_model(model, location)

    def _segment_for(self, net: Any) -> float | None:
        if self.segment is None:
            return None
        limit = getattr(net, "max_allowed_segment", None) or float(getattr(net, "segment", 0))
        return min(self.segment, limit) if limit else self.segment

    def _stride(self, net: Any) -> int:
        """Frames between apply_model's chunk starts (its own formula)."""
        segment = self._segment_for(net) or float(
            getattr(net, "max_allowed_segment", None) or net.segment
        )
        return max(1, int((1 - self.overlap) * int(segment * net.samplerate)))

    def _expected_calls(self, net: Any, length: int) -> int:
        per_pass = -(-length // self._stride(net)) + (1 if self.shifts else 0)
        return len(getattr(net, "models", [net])) * max(1, self.shifts) * per_pass

    def block_hop_multiple(self, model: str, sample_rate: int) -> int:
        """Keep block starts on apply_model's chunk grid.

        Then every block sees the chunks a whole-file run would see, and a
        streamed file matches a whole-file separation (exactly with shifts=0).
        Only possible when no resampling moves the grid.
        """
        net = self.load(model)
        return self._stride(net) if sample_rate == net.samplerate else 1

    def separate_array(
        self, audio: np.ndarray, sample_rate: int, model: str, progress: ProgressCallback
    ) -> Stems:
        import torch
        from demucs.apply import apply_model

        net = self.load(model)
        mix = resample(to_channels(audio, net.audio_channels), sample_rate, net.samplerate)
        # Demucs expects a mix standardised by its mono reference, as its CLI does.
        # The DC removed here is given back in equal shares (the CLI adds all of
        # it to every stem), so our stems still sum to the mix.
        reference = mix.mean(axis=0)
        centre = float(reference.mean())
        scale = float(reference.std()) + 1e-8
        tensor = torch.from_numpy((mix - centre) / scale).float()[None]
        with torch.no_grad():
            out = apply_model(
                net,
                tensor,
                shifts=self.shifts,
                split=True,
                overlap=self.overlap,
                device=self.device,
                segment=self._segment_for(net),
                callback=_ProgressCounter(progress, self._expected_calls(net, mix.shape[-1])),
            )[0]
        sources = out.cpu().numpy() * scale + centre / len(net.sources)
        stems = {}
        for name, source in zip(net.sources, sources, strict=False):
            back = resample(source.astype(np.float32), net.samplerate, sample_rate)
            stems[name] = to_channels(fit_length(back, audio.shape[-1]), audio.shape[0])
        progress(1.0)
        return stems
