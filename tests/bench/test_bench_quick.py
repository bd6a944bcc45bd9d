"""``bench/run.py --quick`` runs and writes its JSON in the documented shape.

Only the shape is checked, never a number: timings belong to the benchmark's
own report (docs/topics/benchmarks.md), not to pass/fail tests. The figures
picked are cheap ones from each kind: engine-only, and two that start the
bench project on PostgreSQL and Redis (skipped by the run, not failed, when
those do not answer; then the entries say why).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import POSTGRES, REDIS, port_open

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ["spectral_rtf", "quality_synth", "webhook_queries", "api_list_queries"]
NEEDS_SERVICES = {"webhook_queries", "api_list_queries"}
KEYS = {"value", "unit", "baseline", "goal", "notes", "met"}


def test_quick_run_writes_every_asked_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    db = "bench_" + os.environ.get("AISTEMSPLITTER_TEST_DB", "test_aistemsplitter")
    env = {**os.environ, "AISTEMSPLITTER_BENCH_DB": db}
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--only", *FIGURES, "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = json.loads(out.read_text())
    assert sorted(data) == sorted(FIGURES)
    services_up = port_open(*POSTGRES[1:]) and port_open(*REDIS[1:])
    for name, entry in data.items():
        assert set(entry) == KEYS, name
        assert isinstance(entry["unit"], str) and entry["unit"], name
        assert isinstance(entry["goal"], str) and entry["goal"], name
        assert isinstance(entry["baseline"], str), name
        assert isinstance(entry["notes"], str), name
        assert entry["met"] in (True, False, None), name
        if entry["value"] is None:
            # Only a missing service may keep a figure from running, and it says so.
            assert name in NEEDS_SERVICES and not services_up, (name, entry["notes"])
            assert entry["notes"].startswith("skipped: "), entry["notes"]
        else:
            assert isinstance(entry["value"], (int, float)), name
            assert entry["baseline"] not in ("", "-"), name
        # One line per figure, in the documented form.
        assert f"\n{name}: " in "\n" + result.stdout, result.stdout[-2000:]
