"""Soak: hundreds of jobs through real workers against a sandbox with every fault switched on.

Marked ``soak``: it runs in ``.ci/run`` (the whole suite) and can be left out
locally with ``-m "not soak"``.

Two rounds, each against a sandbox of its own (a sandbox either delivers webhooks
or drops them all):

* **webhooks delivered, badly**: API calls fail at random (429 with
  ``Retry-After``, 500 before and after the request was handled), stem downloads
  are cut short, every event is sent three times and batches arrive in reverse
  order, every API call is slowed down;
* **webhooks dropped**: the same API and download faults, and not one event
  arrives, so ``reconcile_splits`` (run here every second, as beat would) is what
  finds the finished splits.

Then, for every job: it succeeded, its stems are the model's and byte-identical
to the files the sandbox serves, one remote split was created for it, and no run
was left counted. Storage holds exactly the jobs' audio and stems, no webhook
event lacks its job, and no worker left a staging directory behind.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from django_aistemsplitter import services
from django_aistemsplitter.models import TERMINAL, SplitJob, Stem, WebhookEvent
from django_aistemsplitter.workdirs import STAGING_PREFIX
from tests.conftest import make_wav
from tests.django.conftest import hosted_settings, sandbox_stats
from tests.reliability import record_reliability
from tests.sandbox_process import SandboxProcess
from tests.services import POSTGRES, REDIS, require
from tests.waiting import wait_for
from tests.worker import WorkerProcess, start_worker

pytestmark = [
    pytest.mark.soak,
    pytest.mark.worker,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.reliability("soak"),
]

MODEL_STEMS = ["bass", "drums", "other", "vocals"]
#: Jobs per round: delivered (but duplicated, reordered) webhooks, then dropped ones.
DELIVERED_JOBS = 200
DROPPED_JOBS = 40
WORKERS = 2
THREADS_PER_WORKER = 3
#: Switches on in both rounds (seeded, so a failure can be replayed).
API_AND_DOWNLOAD_FAULTS: dict[str, Any] = {
    "fail_rate": 0.15,
    "retry_after_seconds": 1,
    "truncate_rate": 0.1,
    "latency_ms": 10,
}
WEBHOOK_FAULTS: dict[str, Any] = {
    "duplicate_webhooks": 2,
    "reorder_webhooks": True,
    "reorder_batch": 3,
    "reorder_window": 0.3,
}
#: An injected API fault, as the sandbox logs the answer.
FAULT_LINE = re.compile(r" (429|500) [\d.]+ms$", re.MULTILINE)


class Soak:
    """Workers sharing one private queue, each with a temp dir of its own."""

    def __init__(self, media_root: Path, tmp_path: Path) -> None:
        self.media_root = media_root
        self.tmp_path = tmp_path
        self.workers: list[WorkerProcess] = []
        self.temp_dirs: list[Path] = []

    def start(self, values: dict[str, Any], settings: Any, name: str) -> str:
        """Start the round's workers on a new queue; this process sends to it too."""
        queue = f"aiss-soak-{name}-{time.monotonic_ns()}"
        for index in range(WORKERS):
            temp_dir = self.tmp_path / f"{name}-tmp-{index}"
            temp_dir.mkdir()
            self.temp_dirs.append(temp_dir)
            self.workers.append(
                start_worker(
                    db_name=connection.settings_dict["NAME"],
                    media_root=str(self.media_root),
                    log_dir=self.tmp_path,
                    aistemsplitter=values,
                    queue=queue,
                    concurrency=THREADS_PER_WORKER,
                    extra_env={"TMPDIR": str(temp_dir)},
                )
            )
        settings.AISTEMSPLITTER = {**values, "TASK_QUEUE": queue}
        return queue

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()

    def staging_dirs(self) -> list[Path]:
        return [p for d in self.temp_dirs for p in d.glob(f"{STAGING_PREFIX}*")]


@pytest.fixture
def soak(
    request: pytest.FixtureRequest, transactional_db: None, media_root: Path, tmp_path: Path
) -> Iterator[Soak]:
    require(REDIS)
    require(POSTGRES)
    runs = Soak(media_root, tmp_path)
    try:
        yield runs
    finally:
        logs = [(w.log_path.name, w.log()) for w in runs.workers]
        runs.stop()
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            for name, log in logs:
                print(f"\n----- celery worker log ({name}, last 20000 chars) -----\n{log[-20000:]}")


def create_jobs(count: int, audio: Path) -> list[SplitJob]:
    return [services.split(audio) for _ in range(count)]


def wait_all_terminal(
    jobs: list[SplitJob], what: str, between: Callable[[], None] | None = None
) -> None:
    ids = [job.pk for job in jobs]

    def done() -> bool:
        if between is not None:
            between()
        return not SplitJob.objects.filter(pk__in=ids).exclude(status__in=TERMINAL).exists()

    wait_for(done, timeout=240, interval=1.0, what=what)


def sandbox_sha256(sandbox: SandboxProcess, remote_id: str) -> dict[str, str]:
    """The sha256 of each stem file the sandbox serves for ``remote_id`` (from its disk)."""
    folder = sandbox.data_dir / "splits" / remote_id
    return {p.stem: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def check_round(jobs: list[SplitJob], sandbox: SandboxProcess) -> int:
    """Every job succeeded once, with the sandbox's bytes; returns the faults injected."""
    problems = []
    for job in jobs:
        job.refresh_from_db()
        if job.status != SplitJob.Status.SUCCEEDED:
            problems.append((str(job.pk), job.status, job.error_code, job.error_message))
            continue
        assert job.attempts == 1 and job.unfinished_runs == 0 and job.heartbeat_at is None
        stems = {stem.name: stem for stem in job.stems.all()}
        assert sorted(stems) == MODEL_STEMS, (job.pk, sorted(stems))
        expected = sandbox_sha256(sandbox, job.remote_id)
        for name, stem in stems.items():
            with stem.file.open("rb") as fh:
                stored = hashlib.sha256(fh.read()).hexdigest()
            assert stem.sha256 == stored == expected[name], (job.pk, name)
    assert problems == [], problems
    stats = sandbox_stats(sandbox)
    assert stats["splits"] == len(jobs), stats  # one remote split per job attempt
    api_faults = len(FAULT_LINE.findall(sandbox.log()))
    webhooks = stats["webhooks"]
    copies = webhooks["dropped"] + max(0, webhooks["delivered"] - len(jobs))
    return api_faults + stats["downloads"]["truncated"] + copies


def test_soak_every_job_succeeds_under_every_fault(
    soak: Soak,
    settings: Any,
    sandbox_factory: Callable[..., SandboxProcess],
    live_server: Any,
    media_root: Path,
    tmp_path: Path,
) -> None:
    audio = make_wav(tmp_path / "short.wav", seconds=0.5, rate=22050, channels=1)
    base = {"TASK_MAX_RETRIES": 12, "RETRY_BACKOFF": 0.2, "RETRY_BACKOFF_MAX": 2.0}

    # Round 1: webhooks delivered three times each, batches in reverse order.
    delivered = sandbox_factory(
        seed=11, webhook_retry_base=0.2, **API_AND_DOWNLOAD_FAULTS, **WEBHOOK_FAULTS
    )
    soak.start(
        hosted_settings(delivered, WEBHOOK_BASE_URL=live_server.url, **base), settings, "hooks"
    )
    started = time.monotonic()
    first = create_jobs(DELIVERED_JOBS, audio)
    wait_all_terminal(first, f"{DELIVERED_JOBS} jobs with delivered webhooks")
    faults = check_round(first, delivered)
    soak.stop()
    rounds = {"delivered": time.monotonic() - started}

    # Round 2: every webhook dropped; reconcile finds the finished splits.
    dropped = sandbox_factory(seed=12, drop_webhooks=True, **API_AND_DOWNLOAD_FAULTS)
    soak.start(
        hosted_settings(
            dropped,
            WEBHOOK_BASE_URL=live_server.url,
            RECONCILE_AFTER=2.0,
            # Jobs still queued behind a backlog are nudged too; allow for that.
            RECONCILE_MAX_ATTEMPTS=30,
            **base,
        ),
        settings,
        "dropped",
    )
    started = time.monotonic()
    second = create_jobs(DROPPED_JOBS, audio)

    def reconcile() -> None:
        call_command("reconcile_splits", stdout=io.StringIO())

    wait_all_terminal(second, f"{DROPPED_JOBS} jobs with dropped webhooks", between=reconcile)
    faults += check_round(second, dropped)
    assert sandbox_stats(dropped)["webhooks"]["delivered"] == 0
    soak.stop()
    rounds["dropped"] = time.monotonic() - started

    # Nothing orphaned: storage holds the jobs' audio and stems, rows belong to jobs.
    jobs = first + second
    stored = sorted(str(p.relative_to(media_root)) for p in media_root.rglob("*") if p.is_file())
    expected = sorted([job.audio.name for job in jobs] + [s.file.name for s in Stem.objects.all()])
    assert stored == expected
    assert Stem.objects.count() == len(MODEL_STEMS) * len(jobs)
    assert SplitJob.objects.count() == len(jobs)
    assert not WebhookEvent.objects.filter(job__isnull=True).exists()
    assert soak.staging_dirs() == []
    record_reliability("soak", jobs=len(jobs), faults=faults, stems=Stem.objects.count())
    print(
        f"\nsoak: {len(jobs)} jobs, {faults} faults injected, rounds (s):",
        {k: round(v) for k, v in rounds.items()},
    )
