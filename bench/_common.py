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


#: Source of ``peak()`` for benchmark children: their peak RSS in KiB. VmHWM is read
#: because ``ru_maxrss`` carries the forking parent's peak across ``exec`` on Linux.
PEAK_SOURCE = """
import resource

def peak():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""
