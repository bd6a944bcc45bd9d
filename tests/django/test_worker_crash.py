"""A worker SIGKILLed in the middle of a stem download loses nothing.

The sandbox streams stem files slowly (``--download-kbps``) so the test can kill
the whole worker process while ``ingest_split`` is downloading. Then:

* nothing half-done is visible: no Stem rows, no stem file in storage, the job
  is still ``downloading`` (not succeeded, not failed);
* a fresh worker finishes the job with exactly the model's stems, byte-identical
  to what the sandbox serves, by either recovery path:

  - Celery redelivery: the task is ``acks_late``, so its message stays in Redis'
    unacked set and comes back after the broker's ``visibility_timeout``;
  - ``reconcile_splits``: when the message is gone too (a broker restarted
    without persistence), the periodic safety net re-enqueues the download.

The workers share one temp dir, as a restarted worker on the same host would, so
the test also sees that the staging dir the killed worker left behind is swept.

These workers use their own Redis database: the recovery worker runs with a short
visibility timeout, and Kombu restores *every* message of its database unacked
for longer than that, which must not touch workers of other tests or sessions.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from django_aistemsplitter import ingest, services
from django_aistemsplitter.client import AiStemSplitter
from django_aistemsplitter.models import SplitJob, Stem
from tests.celery_app import VISIBILITY_TIMEOUT_ENV
from tests.celery_app import app as celery_app
from tests.conftest import make_wav
from tests.django.conftest import hosted_settings, sandbox_stats, sha256_of_url
from tests.sandbox_process import SandboxProcess
from tests.services import POSTGRES, REDIS, require
from tests.waiting import wait_for
from tests.worker import WorkerProcess, start_worker

#: A Redis database of their own (see the module docstring).
CRASH_BROKER_URL = os.environ.get("AISTEMSPLITTER_CRASH_BROKER_URL", "redis://127.0.0.1:6379/14")
#: 1600 kbit/s = 200 kB/s: a 1 s stereo stem (~176 kB) takes about a second.
DOWNLOAD_KBPS = 1600
#: Long enough for the recovery worker's own download, short enough to wait for.
VISIBILITY_TIMEOUT = 10
MODEL_STEMS = ["bass", "drums", "other", "vocals"]
STAGING_PREFIX = ingest.STAGING_PREFIX

RECOVERY_TIMES: dict[str, float] = {}


class Crash:
    """Workers on one private queue and temp dir, against the crash broker."""

    def __init__(self, aistemsplitter: dict[str, Any], media_root: Path, tmp_path: Path) -> None:
        self.aistemsplitter = aistemsplitter
        self.media_root = media_root
        self.log_dir = tmp_path
        self.temp_dir = tmp_path / "worker-tmp"
        self.temp_dir.mkdir()
        self.queue = f"aiss-crash-{os.urandom(6).hex()}"
        self.workers: list[WorkerProcess] = []

    def start(self, *, redeliver: bool) -> WorkerProcess:
        env = {"TMPDIR": str(self.temp_dir), "CELERY_BROKER_URL": CRASH_BROKER_URL}
        if redeliver:
            env[VISIBILITY_TIMEOUT_ENV] = str(VISIBILITY_TIMEOUT)
        worker = start_worker(
            db_name=connection.settings_dict["NAME"],
            media_root=str(self.media_root),
            log_dir=self.log_dir,
            aistemsplitter=self.aistemsplitter,
            queue=self.queue,
            extra_env=env,
            own_process_group=True,
        )
        self.workers.append(worker)
        return worker

    def staging_dirs(self) -> list[Path]:
        return sorted(self.temp_dir.glob(f"{STAGING_PREFIX}*"))

    def unacked(self) -> list[str]:
        """Delivery tags of this queue's messages that a worker took and never acked."""
        client = redis.Redis.from_url(CRASH_BROKER_URL)
        tags = []
        for tag, raw in client.hscan_iter("unacked"):
            _message, _exchange, routing_key = json.loads(raw)
            if routing_key == self.queue:
                tags.append(tag.decode())
        return tags

    def lose_unacked(self) -> int:
        """Drop this queue's unacked messages, as a broker restart without persistence would."""
        client = redis.Redis.from_url(CRASH_BROKER_URL)
        tags = self.unacked()
        for tag in tags:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)
        return len(tags)

    def clean_broker(self) -> None:
        """Leave nothing of this queue in Redis (kombu names its exchange after it)."""
        self.lose_unacked()
        redis.Redis.from_url(CRASH_BROKER_URL).delete(
            self.queue, f"_kombu.binding.{self.queue}", f"_kombu.binding_permanent.{self.queue}"
        )


def publish_to(url: str) -> None:
    """Point this process's Celery app at ``url`` for the next publish.

    Celery caches the broker connection pool and the producer pool on first use
    and never looks at ``broker_url`` again; dropping both (as Celery itself does
    after a fork) makes the next publish connect to ``url``.
    """
    celery_app.conf.broker_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def crash(
    request: pytest.FixtureRequest,
    transactional_db: None,
    settings: Any,
    sandbox_factory: Callable[..., SandboxProcess],
    media_root: Path,
    tmp_path: Path,
) -> Iterator[tuple[Crash, SandboxProcess]]:
    require(REDIS)
    require(POSTGRES)
    sandbox = sandbox_factory(download_kbps=DOWNLOAD_KBPS)
    values = hosted_settings(sandbox, DOWNLOAD_ATTEMPTS=1)
    crash = Crash(values, media_root, tmp_path)
    settings.AISTEMSPLITTER = {**values, "TASK_QUEUE": crash.queue}
    # This process enqueues too (the submit, reconcile's re-download): same broker.
    old_url = celery_app.conf.broker_url
    publish_to(CRASH_BROKER_URL)
    try:
        yield crash, sandbox
    finally:
        failed = getattr(request.node, "rep_call", None)
        for worker in crash.workers:
            worker.stop()
            if failed is not None and failed.failed:
                print(f"\n----- celery worker log ({worker.log_path.name}) -----\n{worker.log()}")
        if failed is not None and failed.failed:
            print(f"\n----- sandbox log -----\n{sandbox.log()}")
        crash.clean_broker()
        publish_to(old_url)


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def kill_mid_download(crash: Crash, sandbox: SandboxProcess, job: SplitJob) -> float:
    """Wait until a stem is being streamed to the worker, SIGKILL it; returns when."""
    worker = crash.workers[-1]

    def downloading() -> bool:
        job.refresh_from_db()
        assert job.status != SplitJob.Status.SUCCEEDED, "the ingest finished before the kill"
        return job.status == SplitJob.Status.DOWNLOADING

    wait_for(downloading, interval=0.05, what="the job to start downloading stems")
    wait_for(
        lambda: sandbox_stats(sandbox)["downloads"]["in_flight"] >= 1,
        interval=0.05,
        what="a stem download in flight",
    )
    worker.kill()
    killed_at = time.monotonic()
    # The sandbox saw its client vanish in the middle of a stem.
    downloads = wait_for(
        lambda: (d := sandbox_stats(sandbox)["downloads"])["broken"] >= 1 and d,
        what="the sandbox to notice the dropped download",
    )
    assert downloads["completed"] < len(MODEL_STEMS), downloads
    return killed_at


def assert_nothing_half_done(crash: Crash, job: SplitJob) -> None:
    """After the kill: no rows, no stem files, job still downloading."""
    job.refresh_from_db()
    assert job.status == SplitJob.Status.DOWNLOADING, (job.status, job.error_message)
    assert job.finished_at is None
    assert not Stem.objects.filter(job=job).exists()
    assert files_under(crash.media_root) == [job.audio.name]  # only the uploaded song
    # The partial download sits in the worker's staging dir, outside storage.
    staged = [p for d in crash.staging_dirs() for p in d.iterdir() if p.suffix == ".wav"]
    assert staged, f"no partial stem in {crash.temp_dir}: {list(crash.temp_dir.iterdir())}"


def assert_recovered(crash: Crash, sandbox: SandboxProcess, job: SplitJob) -> None:
    """Exactly the model's stems, once, with the sandbox's bytes; nothing left over."""
    job.refresh_from_db()
    assert job.status == SplitJob.Status.SUCCEEDED, (job.error_code, job.error_message)
    stems = list(job.stems.all())
    assert sorted(s.name for s in stems) == MODEL_STEMS
    with AiStemSplitter(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        remote = client.get_split(job.remote_id)
    for stem in stems:
        expected = sha256_of_url(remote.stems[stem.name])
        assert stem.sha256 == expected, stem.name
        with stem.file.open("rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == expected, stem.name
    assert files_under(crash.media_root) == sorted([job.audio.name, *(s.file.name for s in stems)])
    # The killed worker's staging dir was swept, and the finished ingest removed its own.
    assert crash.staging_dirs() == []
    assert sandbox_stats(sandbox)["splits"] == 1


def wait_succeeded(job: SplitJob, what: str) -> None:
    def finished() -> bool:
        job.refresh_from_db()
        return job.is_terminal

    wait_for(finished, timeout=180, interval=0.25, what=what)


def ingest_deliveries(worker: WorkerProcess) -> list[str]:
    """Task ids of ``ingest_split`` messages the workers of this queue received, in order."""
    return re.findall(r"tasks\.ingest_split\[([0-9a-f-]+)\] received", worker.log())


def assert_stored_once_and_swept(worker: WorkerProcess, task_id: str) -> None:
    log = worker.log()
    assert len(re.findall(rf"ingest_split\[{task_id}\] succeeded in [\d.]+s: 'stored'", log)) == 1
    assert "removed 1 staging dir(s) left by killed workers" in log


@pytest.mark.worker
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_redelivered_after_sigkill_mid_download(
    crash: tuple[Crash, SandboxProcess], tmp_path: Path
) -> None:
    runs, sandbox = crash
    runs.start(redeliver=False)  # a production-like worker: 1 h visibility timeout
    job = services.split(make_wav(tmp_path / "song.wav", seconds=1.0))
    killed_at = kill_mid_download(runs, sandbox, job)
    assert_nothing_half_done(runs, job)
    # acks_late: the killed worker never acked, so Redis still holds the message.
    assert len(runs.unacked()) == 1

    runs.start(redeliver=True)
    wait_succeeded(job, "the redelivered ingest to finish the job")
    RECOVERY_TIMES["redelivery"] = time.monotonic() - killed_at
    assert_recovered(runs, sandbox, job)
    assert runs.unacked() == []  # acked this time
    # The very message the killed worker held came back (same task id).
    first, *again = ingest_deliveries(runs.workers[-1])
    assert again and set(again) == {first}
    assert_stored_once_and_swept(runs.workers[-1], first)


@pytest.mark.worker
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_reconcile_recovers_when_the_message_is_lost_too(
    crash: tuple[Crash, SandboxProcess], tmp_path: Path
) -> None:
    runs, sandbox = crash
    runs.start(redeliver=False)
    job = services.split(make_wav(tmp_path / "song.wav", seconds=1.0))
    killed_at = kill_mid_download(runs, sandbox, job)
    assert_nothing_half_done(runs, job)
    assert runs.lose_unacked() == 1

    runs.start(redeliver=False)  # nothing to redeliver within the test either way
    wait_for(
        lambda: SplitJob.objects.filter(pk=job.pk, updated_at__lt=_seconds_ago(1.5)).exists(),
        what="the job to count as stuck",
    )
    out = io.StringIO()
    call_command("reconcile_splits", older_than=1.0, stdout=out)
    assert "ingested 1" in out.getvalue(), out.getvalue()
    wait_succeeded(job, "the reconciled ingest to finish the job")
    RECOVERY_TIMES["reconcile"] = time.monotonic() - killed_at
    assert_recovered(runs, sandbox, job)
    # A new message did it: the killed worker's one was never seen again.
    killed, *others = ingest_deliveries(runs.workers[-1])
    assert len(others) == 1 and others[0] != killed
    assert_stored_once_and_swept(runs.workers[-1], others[0])


def _seconds_ago(seconds: float) -> datetime:
    return timezone.now() - timedelta(seconds=seconds)


def test_recovery_times_report() -> None:
    print("\nrecovery after SIGKILL (s):", {k: round(v, 2) for k, v in RECOVERY_TIMES.items()})


_DIE_WITH_A_STAGING_DIR = """
import os, signal, django
django.setup()
from django_aistemsplitter.ingest import staging_dir
path = staging_dir()
(path / "vocals.wav").write_bytes(b"RIFF partial")
print(path, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_sweep_removes_only_staging_dirs_of_dead_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No worker needed: a process SIGKILLs itself holding a staging dir."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "TMPDIR": str(tmp_path)}
    died = subprocess.run(
        [sys.executable, "-c", _DIE_WITH_A_STAGING_DIR],
        env=env,
        capture_output=True,
        cwd=Path(__file__).parents[2],
        timeout=60,
    )
    assert died.returncode == -signal.SIGKILL, died.stderr.decode()
    dead = Path(died.stdout.decode().strip())
    assert dead.parent == tmp_path and (dead / "vocals.wav").exists()
    legacy = tmp_path / f"{STAGING_PREFIX}legacy"  # no lock file: not provably ours
    legacy.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    live = ingest.staging_dir()  # sweeps first: the dead process's dir goes
    try:
        assert live.parent == tmp_path
        assert sorted(tmp_path.glob(f"{STAGING_PREFIX}*")) == sorted([live, legacy])
        assert ingest.sweep_staging_dirs() == 0  # a live one (even our own) is left alone
        assert live.is_dir()
    finally:
        ingest.remove_dir(live)
    assert not live.exists()
    assert ingest.sweep_staging_dirs() == 0
    assert sorted(tmp_path.glob(f"{STAGING_PREFIX}*")) == [legacy]
