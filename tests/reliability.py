"""The reliability record: what the suite tries on purpose, rendered into ``docs/reliability.md``.

A pytest plugin (registered in ``tests/conftest.py``). The page lists every
finding below -- hostile input, injected faults, killed workers -- with the tests
that cover it, the figures of the last full run and its outcome. It is written by
the suite, never by hand, so it cannot claim more than the tests did.

Taking part, from a test module
-------------------------------
1. The finding is declared once in :data:`FINDINGS` (a stable ``key``, what was
   tried, where it was found, what the app does about it). Every item of issue 9
   already has its row: add one only for something new.
2. Tie tests to it with the marker ``@pytest.mark.reliability("<key>")`` (on a
   test, a class, or a module's ``pytestmark``). Tests that predate the record are
   tied by node-id prefix in ``Finding.tests`` instead, so their files need no edit.
   An unknown key is a usage error at collection.
3. Report figures from inside a test, once its checks have passed::

       from tests.reliability import record_reliability

       record_reliability("webhook-fuzz", requests=2000)

   Figures are integers, summed per finding and name over the session. The names
   of :data:`FIGURE_LABELS` (``requests``, ``jobs``, ``faults``, ``crashes``) are
   also totalled at the top of the page; any other name is shown as written
   (``stems=800`` reads "800 stems"). ``Finding.per_pass`` credits figures for each
   passing test that cannot record them itself.

   Code running in another process (a worker, a subprocess) writes
   ``{"<key>": {"<figure>": <int>}}`` to a JSON file in
   ``test-artifacts/reliability/``; files written during the session are merged.

When the page is written
------------------------
At the end of a run that covered the whole ``tests`` directory with no test
deselected (``-k``, ``-m``, ``--deselect``) and every tied test run to its end, so a
partial local run never clobbers the page with partial figures. The environment
variable ``AISTEMSPLITTER_RELIABILITY_PAGE`` overrides that: ``1`` writes after any
run (findings whose tests did not run say so), ``0`` never writes. The terminal
summary says whether the page was written, and why not.
``tests/test_reliability_page.py`` checks that the committed page lists every
finding and that every ``Finding.tests`` prefix names a test that exists.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "FIGURE_LABELS",
    "FINDINGS",
    "PAGE",
    "Finding",
    "record_reliability",
    "render",
]

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "reliability.md"
ARTIFACTS = ROOT / "test-artifacts" / "reliability"
ENV = "AISTEMSPLITTER_RELIABILITY_PAGE"
MARKER = "reliability"

#: Figures totalled at the top of the page, with how they read.
FIGURE_LABELS = {
    "requests": "requests fuzzed",
    "jobs": "jobs run",
    "faults": "faults injected",
    "crashes": "worker crashes",
}


@dataclass(frozen=True)
class Finding:
    """Something tried on purpose, and what the app does about it."""

    key: str
    tried: str
    source: str
    result: str
    #: Node ids (or prefixes: a file, a test without its parameters) of tests that
    #: predate the record; new tests use the marker instead.
    tests: tuple[str, ...] = ()
    #: Figures credited for each passing test (for tests that cannot record them).
    per_pass: Mapping[str, int] = field(default_factory=dict)


ISSUE = "issue 9"

FINDINGS: tuple[Finding, ...] = (
    Finding(
        "audio-limits",
        "A 4 KB WAV whose header claims 2,000,000,000 Hz (it killed the worker with "
        "SIGSEGV); a 99-byte FLAC claiming 8,589,934 s ($20,043); an hour of silent "
        "FLAC; a 1 Hz FLAC (the API answered 500 on the cost).",
        f"{ISSUE}, item 1",
        "Sample rate, channels and duration are checked in the one validation path, the "
        "duration against the file size; engines refuse what they cannot handle with an "
        "`EngineError`.",
        tests=("tests/engines/test_limits.py",),
    ),
    Finding(
        "poison-message",
        "An upload that crashes the engine in native code, redelivered by `acks_late` "
        "to the next worker, and the next.",
        f"{ISSUE}, item 2",
        "Deliveries are counted per job in the database and the job fails with a clear "
        "code after the cap; heavy engine work runs where a crash cannot loop.",
    ),
    Finding(
        "terminal-states",
        "Unexpected exceptions in tasks (`InvalidURL`, `ENOSPC`, a deleted source file), "
        "reconcile re-queueing a job forever or starting a second run of a live one, "
        "deleting a job with files.",
        f"{ISSUE}, item 3",
        "Every job reaches a terminal state: unknown errors fail it, reconcile has an "
        "attempt cap, a deadline and a heartbeat; files go after the delete commits.",
    ),
    Finding(
        "retry-after",
        "`Retry-After` of 86400, `1e20` and an HTTP date in 2099.",
        f"{ISSUE}, item 4",
        "Parsed defensively and capped by one setting, in the client and the tasks.",
        tests=("tests/client/test_retry_after.py",),
    ),
    Finding(
        "webhook-malformed",
        "Signature headers with a 400-digit timestamp or a non-ASCII `v1=`; signed "
        "events with `NaN`/`Infinity`, NUL characters, lone surrogates, deep nesting, "
        "wrong types, over-long ids or a value the database refuses; bodies over "
        "`WEBHOOK_MAX_BYTES`, with and without `Content-Length`.",
        f"{ISSUE}, item 5",
        "Unsigned: 400 (413 when too big) with a short reason, nothing stored. Signed "
        "but malformed: one `malformed` row with the reason, answered 200 so that the "
        "service stops retrying; no job touched.",
        tests=("tests/client/test_hostile_webhooks.py",),
    ),
    Finding(
        "webhook-fuzz",
        "Hypothesis-mutated requests to the webhook view: bodies, encodings, nesting, "
        "sizes, `Content-Length`, timestamps and signatures, valid and forged.",
        f"{ISSUE}, item 5",
        "Never a 5xx; no state change for an unsigned one; a signed one adds at most "
        "one row; no secret in a response or a log line.",
    ),
    Finding(
        "api-malformed",
        "API requests with a NUL byte in metadata (PostgreSQL), a 50,000-level nested "
        "JSON body, and hypothesis-mutated requests.",
        f"{ISSUE}, item 5",
        "400 with a short reason, never a 500; nothing stored.",
    ),
    Finding(
        "paid-work-limits",
        "Cancel + retry to bypass the create throttle; `source_url` at "
        "169.254.169.254, loopback and private ranges; an upload over "
        "`MAX_UPLOAD_BYTES` received in full; a stem download trickling forever.",
        f"{ISSUE}, item 6",
        "Every action that starts paid work is throttled; the address policy applies "
        "after DNS resolution; uploads are refused while streaming; downloads have an "
        "overall deadline.",
    ),
    Finding(
        "api-permissions",
        "An `is_staff` user without model permissions using the API's staff powers.",
        f"{ISSUE}, item 7",
        "API staff access follows `view_splitjob` and `change_splitjob`, like the admin.",
    ),
    Finding(
        "webhook-audit",
        "A redelivered webhook overwriting the stored outcome `processed` with `duplicate`.",
        f"{ISSUE}, item 8",
        "The row keeps its first final outcome and counts `deliveries`; the answer and "
        "the signal (`created=False`) say it was a duplicate.",
    ),
    Finding(
        "soak",
        "Many jobs through a real worker against the sandbox with every fault switch on "
        "(failures, truncation, duplicated, reordered and dropped webhooks, latency).",
        f"{ISSUE}, item 9",
        "Every job succeeds with stems matching the sandbox's sha256, no orphan file or "
        "row, one remote split per attempt.",
    ),
    Finding(
        "reliability-record",
        "This page: generated by the suite, listing every finding.",
        f"{ISSUE}, item 10",
        "A test fails when a finding is missing here or names a test that does not exist.",
        tests=("tests/test_reliability_page.py",),
    ),
    Finding(
        "worker-sigkill",
        "A real Celery worker SIGKILLed in the middle of a stem download: recovered by "
        "redelivery, and by reconcile when the message is lost too; staging directories "
        "of dead processes.",
        "crash tests",
        "Nothing half-done is visible; a fresh worker finishes the job with byte-identical "
        "stems; the dead worker's staging directory is swept.",
        tests=(
            "tests/django/test_worker_crash.py::test_redelivered_after_sigkill_mid_download",
            "tests/django/test_worker_crash.py::test_reconcile_recovers_when_the_message_is_lost_too",
            "tests/django/test_worker_crash.py::test_sweep_removes_only_staging_dirs_of_dead_processes",
        ),
        per_pass={"crashes": 1},
    ),
    Finding(
        "sandbox-faults",
        "The sandbox's injected API faults: error rate with `Retry-After`, lost "
        "responses, truncated and throttled downloads, latency, clients hanging up.",
        "fault tests",
        "Each fault has the documented shape, so the client's retry and idempotency "
        "rules can be tested against it.",
        tests=("tests/sandbox/test_faults.py",),
        per_pass={"fault_scenarios": 1},
    ),
    Finding(
        "e2e-faults",
        "Whole jobs through a real worker and the sandbox under a 30 % failure rate, "
        "truncated downloads, duplicated, dropped, reordered and thin webhooks.",
        "end-to-end tests",
        "Every job ends with every stem stored once, byte-identical to the sandbox's.",
        tests=("tests/django/test_e2e.py::test_faults_still_end_with_every_stem_once",),
        per_pass={"jobs": 3, "fault_scenarios": 1},
    ),
)

_BY_KEY = {finding.key: finding for finding in FINDINGS}
assert len(_BY_KEY) == len(FINDINGS), "finding keys must be unique"


# --- what tests report -------------------------------------------------------------------

_figures: dict[str, Counter[str]] = defaultdict(Counter)


def record_reliability(finding: str, **figures: int) -> None:
    """Add ``figures`` (integers) to ``finding``'s line of the reliability record."""
    if finding not in _BY_KEY:
        raise KeyError(
            f"unknown reliability finding {finding!r}; declare it in tests/reliability.py"
        )
    for name, value in figures.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise TypeError(f"figure {name}={value!r} must be a non-negative integer")
    _figures[finding].update(figures)


# --- rendering -----------------------------------------------------------------------------


@dataclass
class Result:
    """What one run did for one finding."""

    tests: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    figures: Counter[str] = field(default_factory=Counter)

    def outcome(self, complete: bool = True) -> str:
        """Passed, failed or skipped; without tests, "no test yet" after a full run."""
        counts: Counter[str] = Counter()
        for per_test in self.tests.values():
            counts.update(per_test)
        if not counts:
            return "no test yet" if complete else "not run"
        ran = counts["passed"] + counts["failed"]
        if counts["failed"]:
            return f"**failed** ({counts['failed']} of {ran + counts['skipped']})"
        if not ran:
            return "skipped" if counts["skipped"] else "not run"
        skipped = f", {counts['skipped']} skipped" if counts["skipped"] else ""
        return f"passed ({ran} test{'s' if ran != 1 else ''}{skipped})"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _figure_order(name: str) -> tuple[int, str]:
    """The labelled figures first, in their order; then the others by name."""
    order = list(FIGURE_LABELS)
    return (order.index(name) if name in order else len(order), name)


def _figure_text(figures: Mapping[str, int]) -> str:
    parts = [
        f"{figures[name]:,} {FIGURE_LABELS.get(name, name.replace('_', ' '))}"
        for name in sorted(figures, key=_figure_order)
        if figures[name]
    ]
    return ", ".join(parts) or "none"


def _tests_text(tests: Mapping[str, Counter[str]]) -> str:
    """``file``: ``test`` (n cases), grouped by file; parameters folded."""
    by_file: dict[str, Counter[str]] = defaultdict(Counter)
    for nodeid in tests:
        path, _, name = nodeid.partition("::")
        by_file[path][name.split("[", 1)[0]] += 1
    parts = []
    for path in sorted(by_file):
        names = ", ".join(
            f"`{name}`" + (f" ({n} cases)" if n > 1 else "")
            for name, n in sorted(by_file[path].items())
        )
        parts.append(f"`{path}`: {names}")
    return "; ".join(parts) or "none"


def render(results: Mapping[str, Result], *, complete: bool = True) -> str:
    """The page, for ``results`` keyed by finding.

    ``complete`` says the run covered the whole suite, so a finding without tests
    has none yet (rather than none run in a partial, forced run).
    """
    totals: Counter[str] = Counter()
    for result in results.values():
        totals.update({k: v for k, v in result.figures.items() if k in FIGURE_LABELS})
    passed = sum(
        1 for f in FINDINGS if results.get(f.key, Result()).outcome(complete).startswith("passed")
    )
    lines = [
        "# Reliability record",
        "",
        "<!-- Generated by tests/reliability.py at the end of a full test run: do not edit.",
        "     Declare findings there, tie tests to them, and run the suite. -->",
        "",
        "What the test suite tries on purpose (hostile input, injected faults, killed "
        "workers), where each finding came from, which tests do it, the figures of the "
        "last full run and its outcome. Why the app behaves this way is explained in "
        "{doc}`topics/reliability`.",
        "",
        f"**{'Last full run' if complete else 'Last run (part of the suite)'}:** "
        f"{_figure_text(totals) if +totals else 'no figures recorded'}; "
        f"{passed} of {len(FINDINGS)} findings passed.",
        "",
        "| Finding | What was tried | What the app does | Tests | Figures | Outcome |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for finding in FINDINGS:
        result = results.get(finding.key, Result())
        cells = [
            f"`{finding.key}` ({finding.source})",
            finding.tried,
            finding.result,
            _tests_text(result.tests),
            _figure_text(result.figures),
            result.outcome(complete),
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


# --- the plugin ------------------------------------------------------------------------


def _matches(nodeid: str, prefix: str) -> bool:
    return nodeid == prefix or nodeid.startswith((prefix + "::", prefix + "["))


def findings_of(nodeid: str, marker_keys: Iterable[str]) -> set[str]:
    keys = set(marker_keys)
    keys.update(f.key for f in FINDINGS if any(_matches(nodeid, p) for p in f.tests))
    return keys


class ReliabilityPlugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.started = time.time()
        self.tied: dict[str, set[str]] = {}
        self.outcomes: dict[str, Counter[str]] = defaultdict(Counter)
        self.finished: set[str] = set()
        self.deselected = 0
        self.note = ""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        unknown: set[str] = set()
        for item in items:
            marked = [m.args[0] for m in item.iter_markers(MARKER) if m.args]
            unknown.update(k for k in marked if k not in _BY_KEY)
            keys = findings_of(item.nodeid, marked)
            if keys:
                self.tied[item.nodeid] = keys
        if unknown:
            raise pytest.UsageError(
                f"unknown reliability finding(s) {sorted(unknown)}: declare them in "
                "tests/reliability.py"
            )

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += len(items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.nodeid not in self.tied:
            return
        if report.failed:
            self.outcomes[report.nodeid]["failed"] = 1
        elif report.skipped and report.when in ("setup", "call"):
            self.outcomes[report.nodeid]["skipped"] = 1
        elif report.passed and report.when == "call":
            self.outcomes[report.nodeid]["passed"] = 1
        if report.when == "teardown":
            self.finished.add(report.nodeid)

    def _full_run(self) -> str:
        """Empty when the run covered every tied test; otherwise why not."""
        tests_dir = ROOT / "tests"
        base = Path(self.config.invocation_params.dir)
        args = [(base / a.split("::", 1)[0]).resolve() for a in self.config.args]
        if not any(tests_dir == a or tests_dir.is_relative_to(a) for a in args):
            return "the run did not cover the whole tests directory"
        if self.deselected:
            return f"{self.deselected} test(s) were deselected"
        unfinished = set(self.tied) - self.finished
        if unfinished:
            return f"{len(unfinished)} reliability test(s) did not run to the end"
        return ""

    def results(self) -> dict[str, Result]:
        results: dict[str, Result] = {f.key: Result() for f in FINDINGS}
        for nodeid, keys in self.tied.items():
            outcome = self.outcomes.get(nodeid) or Counter({"not run": 1})
            for key in keys:
                results[key].tests[nodeid] = outcome
                if outcome["passed"] and not outcome["failed"]:
                    results[key].figures.update(_BY_KEY[key].per_pass)
        for key, figures in _figures.items():
            results[key].figures.update(figures)
        for key, figures in _artifact_figures(self.started).items():
            if key in results:
                results[key].figures.update(figures)
        return results

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        mode = os.environ.get(ENV, "")
        if mode == "0":
            self.note = f"not regenerated ({ENV}=0)"
            return
        why = self._full_run()
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            why = "the run was interrupted"
        if why and mode != "1":
            self.note = f"not regenerated: {why} (set {ENV}=1 to force)"
            return
        text = render(self.results(), complete=not why)
        if PAGE.exists() and PAGE.read_text(encoding="utf-8") == text:
            self.note = "up to date"
            return
        PAGE.write_text(text, encoding="utf-8")
        self.note = "regenerated"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.note and self.tied:
            terminalreporter.write_line(f"docs/reliability.md {self.note}")


def _artifact_figures(since: float) -> dict[str, Counter[str]]:
    """Figures written as JSON by other processes during this session."""
    merged: dict[str, Counter[str]] = defaultdict(Counter)
    if not ARTIFACTS.is_dir():
        return merged
    for path in sorted(ARTIFACTS.glob("*.json")):
        if path.stat().st_mtime < since:
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        for key, figures in data.items():
            merged[key].update({k: int(v) for k, v in figures.items()})
    return merged


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(finding): the test covers a finding of docs/reliability.md"
    )
    config.pluginmanager.register(ReliabilityPlugin(config), "aistemsplitter-reliability")
