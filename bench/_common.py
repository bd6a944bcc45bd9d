"""Shared set-up of the bench scripts: one thread, the repo on the path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Benchmarks are "per core": keep BLAS/OpenMP pools (torch, scipy) to one thread.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
