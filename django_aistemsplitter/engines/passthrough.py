"""A test engine: every stem is the mix divided evenly, so the stems sum to the mix.

It serves every hosted model name and costs nothing, which makes it the engine of
choice for protocol tests, where what matters is the plumbing, not the separation.
"""

from __future__ import annotations

import numpy as np

from django_aistemsplitter import contract
from django_aistemsplitter.engines.base import Engine, ProgressCallback, Stems


class PassthroughEngine(Engine):
    name = "passthrough"
    models = {**contract.MODELS, "spectral": contract.FOUR_STEMS}
    default_model = contract.DEFAULT_MODEL

    def separate_array(
        self, audio: np.ndarray, sample_rate: int, model: str, progress: ProgressCallback
    ) -> Stems:
        names = self.models[model]
        share = (audio / np.float32(len(names))).astype(np.float32)
        progress(1.0)
        return {name: share.copy() for name in names}
