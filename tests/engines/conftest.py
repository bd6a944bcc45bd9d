from __future__ import annotations

import numpy as np
import pytest

from django_aistemsplitter.sandbox.synth import make_mixture

RATE = 44100


@pytest.fixture(scope="session")
def song() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """An 8 s generated mixture with its true stems; the formant voice keeps it hermetic."""
    return make_mixture(8.0, RATE, seed=7, voice="synth")
