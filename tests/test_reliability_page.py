"""``docs/reliability.md`` is the suite's record: every finding listed, every test real.

The page itself is written by ``tests/reliability.py`` at the end of a full run;
these tests keep the committed copy and the registry honest between runs.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import pytest

from tests import reliability
from tests.reliability import FINDINGS, PAGE, ROOT, Result, record_reliability, render

pytestmark = pytest.mark.reliability("reliability-record")


def _rows(text: str) -> dict[str, str]:
    """The table's rows of ``text``, keyed by finding."""
    rows = {}
    for line in text.splitlines():
        found = re.match(r"\| `([a-z0-9-]+)` \(", line)
        if found:
            rows[found.group(1)] = line
    return rows


def test_the_committed_page_lists_every_finding() -> None:
    rows = _rows(PAGE.read_text(encoding="utf-8"))
    missing = [f.key for f in FINDINGS if f.key not in rows]
    assert not missing, f"docs/reliability.md lacks {missing}: run the whole suite to regenerate it"
    assert set(rows) <= {f.key for f in FINDINGS}, "the page lists a finding that is gone"


def test_the_page_is_in_the_docs_toctree() -> None:
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    assert re.search(r"^reliability$", index, re.MULTILINE)


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.name.startswith("test")
    }


def test_every_test_a_finding_names_exists() -> None:
    for finding in FINDINGS:
        for prefix in finding.tests:
            path, _, name = prefix.partition("::")
            file = ROOT / path
            assert file.is_file(), f"{finding.key}: no file {path}"
            if name:
                assert name.split("[")[0] in _test_names(file), f"{finding.key}: no test {prefix}"


def test_render_shows_figures_outcomes_and_totals() -> None:
    fuzz = Result(figures=Counter(requests=10_000))
    fuzz.tests["tests/x.py::test_a[1]"] = Counter(passed=1)
    fuzz.tests["tests/x.py::test_a[2]"] = Counter(passed=1)
    soak = Result(figures=Counter(jobs=200, faults=31, stems=800))
    soak.tests["tests/y.py::test_soak"] = Counter(failed=1)
    text = render({"webhook-fuzz": fuzz, "soak": soak})
    rows = _rows(text)
    assert set(rows) == {f.key for f in FINDINGS}
    assert "10,000 requests fuzzed" in rows["webhook-fuzz"]
    assert "`tests/x.py`: `test_a` (2 cases)" in rows["webhook-fuzz"]
    assert "passed (2 tests)" in rows["webhook-fuzz"]
    assert "200 jobs run, 31 faults injected, 800 stems" in rows["soak"]
    assert "**failed** (1 of 1)" in rows["soak"]
    assert "no test yet" in rows["api-permissions"]
    assert "10,000 requests fuzzed, 200 jobs run, 31 faults injected" in text
    assert f"; 1 of {len(FINDINGS)} findings passed." in text
    partial = _rows(render({"webhook-fuzz": fuzz}, complete=False))
    assert partial["api-permissions"].endswith("| not run |")


def test_record_reliability_refuses_unknown_findings_and_bad_figures() -> None:
    before = Counter(reliability._figures["webhook-fuzz"])
    with pytest.raises(KeyError, match="no-such-finding"):
        record_reliability("no-such-finding", requests=1)
    with pytest.raises(TypeError):
        record_reliability("webhook-fuzz", requests=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        record_reliability("webhook-fuzz", requests=-1)
    assert reliability._figures["webhook-fuzz"] == before
