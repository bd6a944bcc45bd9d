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
from contextlib import ExitStack, contextmanager
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
from tests.reliability import record_reliability
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

    def start(
        self, *, redeliver: bool, visibility: float = VISIBILITY_TIMEOUT, may_die: bool = False
    ) -> WorkerProcess:
        env = {"TMPDIR": str(self.temp_dir), "CELERY_BROKER_URL": CRASH_BROKER_URL}
        if redeliver:
            env[VISIBILITY_TIMEOUT_ENV] = str(visibility)
        worker = start_worker(
            db_name=connection.settings_dict["NAME"],
            media_root=str(self.media_root),
            log_dir=self.log_dir,
            aistemsplitter=self.aistemsplitter,
            queue=self.queue,
            extra_env=env,
            own_process_group=True,
            may_die=may_die,
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
    after a fork) makes the next publish connect to ``url``. Publishing reads
    ``broker_write_url``, which wins over a ``CELERY_BROKER_URL`` environment
    variable (that one wins over ``broker_url``), so both are set.
    """
    celery_app.conf.broker_url = url
    celery_app.conf.broker_write_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def crash_runs(
    request: pytest.FixtureRequest,
    settings: Any,
    values: dict[str, Any],
    media_root: Path,
    tmp_path: Path,
    sandbox: SandboxProcess | None = None,
) -> Iterator[Crash]:
    """Workers of ``values`` on the crash broker; their logs printed if the test failed."""
    require(REDIS)
    require(POSTGRES)
    crash = Crash(values, media_root, tmp_path)
    settings.AISTEMSPLITTER = {**values, "TASK_QUEUE": crash.queue}
    # This process enqueues too (the submit, reconcile's re-download): same broker.
    old_url = celery_app.conf.broker_url
    publish_to(CRASH_BROKER_URL)
    try:
        yield crash
    finally:
        failed = getattr(request.node, "rep_call", None)
        for worker in crash.workers:
            worker.stop()
            if failed is not None and failed.failed:
                print(f"\n----- celery worker log ({worker.log_path.name}) -----\n{worker.log()}")
        if sandbox is not None and failed is not None and failed.failed:
            print(f"\n----- sandbox log -----\n{sandbox.log()}")
        crash.clean_broker()
        publish_to(old_url)


@pytest.fixture
def crash(
    request: pytest.FixtureRequest,
    transactional_db: None,
    settings: Any,
    sandbox_factory: Callable[..., SandboxProcess],
    media_root: Path,
    tmp_path: Path,
) -> Iterator[tuple[Crash, SandboxProcess]]:
    sandbox = sandbox_factory(download_kbps=DOWNLOAD_KBPS)
    # A killed run counts as dead once its heartbeat is older than 3/4 RECONCILE_AFTER:
    # well before the redelivery (VISIBILITY_TIMEOUT), which then runs at once.
    values = hosted_settings(sandbox, DOWNLOAD_ATTEMPTS=1, RECONCILE_AFTER=2.0)
    with crash_runs(request, settings, values, media_root, tmp_path, sandbox) as runs:
        yield runs, sandbox


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
    staged = [p for d in crash.staging_dirs() for p in d.iterdir() if ".wav" in p.name]
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


# --- an upload crafted to crash the engine ------------------------------------------------

SEGFAULT_ENGINE = "tests.django.crashing_engines.SegfaultEngine"
#: Short enough that three deliveries fit in a test, longer than a healthy local job.
POISON_VISIBILITY_TIMEOUT = 5


@pytest.fixture
def local_crash(
    request: pytest.FixtureRequest,
    transactional_db: None,
    settings: Any,
    media_root: Path,
    tmp_path: Path,
) -> Callable[..., Crash]:
    """Start (once) local-engine crash runs with extra settings; cleaned up at teardown."""
    stack = ExitStack()
    request.addfinalizer(stack.close)

    def make(**values: Any) -> Crash:
        local = {"BACKEND": "local", "ENGINE": SEGFAULT_ENGINE, **values}
        return stack.enter_context(crash_runs(request, settings, local, media_root, tmp_path))

    return make


def wait_terminal(job: SplitJob, what: str) -> None:
    def finished() -> bool:
        job.refresh_from_db()
        return job.is_terminal

    wait_for(finished, timeout=120, interval=0.2, what=what)


def assert_next_job_succeeds(worker: WorkerProcess, tmp_path: Path) -> None:
    healthy = services.split(make_wav(tmp_path / "healthy.wav", seconds=1.0))
    wait_terminal(healthy, "the next (healthy) job")
    assert healthy.status == SplitJob.Status.SUCCEEDED, (healthy.error_code, healthy.error_message)
    assert sorted(s.name for s in healthy.stems.all()) == MODEL_STEMS
    assert worker.process is not None and worker.process.poll() is None


@pytest.mark.reliability("poison-message")
@pytest.mark.worker
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_a_worker_survives_an_upload_that_crashes_the_engine(
    local_crash: Callable[..., Crash], tmp_path: Path
) -> None:
    """The engine segfaults in its own process: the job fails, the worker carries on."""
    runs = local_crash()
    worker = runs.start(redeliver=False)
    crafted = services.split(make_wav(tmp_path / "crafted.wav", seconds=1.0, channels=1))
    wait_terminal(crafted, "the crafted job to end")
    assert crafted.status == SplitJob.Status.FAILED
    assert crafted.error_code == "ENGINE_CRASHED"
    assert "SIGSEGV" in crafted.error_message
    assert crafted.unfinished_runs == 0
    assert_next_job_succeeds(worker, tmp_path)
    # Every message is acknowledged (nothing comes back), by the one worker started.
    wait_for(lambda: runs.unacked() == [], what="both messages to be acknowledged")
    assert worker.process is not None and worker.process.poll() is None
    record_reliability("poison-message", jobs=2, crashes=1)


@pytest.mark.reliability("poison-message")
@pytest.mark.worker
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_a_message_that_keeps_killing_workers_fails_its_job(
    local_crash: Callable[..., Crash], tmp_path: Path
) -> None:
    """In-process engine (debug setting): each delivery kills a worker, until the count says no.

    Late acknowledgement hands the message to the next worker every time its
    worker dies; the database remembers the runs that never finished, and the
    delivery after ``MAX_UNFINISHED_RUNS`` of them fails the job instead of
    running it (and killing the worker) again.
    """
    # RECONCILE_AFTER sets how soon a silent run counts as dead (3/4 of it): well
    # before each redelivery here, as the broker's hour is in production.
    runs = local_crash(ENGINE_IN_SUBPROCESS=False, MAX_UNFINISHED_RUNS=2, RECONCILE_AFTER=1.0)
    crafted = services.split(make_wav(tmp_path / "crafted.wav", seconds=1.0, channels=1))
    for died in (1, 2):
        # The message kills it, perhaps before it has logged that it is ready.
        worker = runs.start(redeliver=True, visibility=POISON_VISIBILITY_TIMEOUT, may_die=True)
        wait_for(
            lambda worker=worker: worker.process is not None and worker.process.poll() is not None,
            timeout=120,
            what=f"delivery {died} to kill its worker",
        )
        assert worker.process is not None and worker.process.returncode == -signal.SIGSEGV
        crafted.refresh_from_db()
        assert not crafted.is_terminal
        assert crafted.unfinished_runs == died
    survivor = runs.start(redeliver=True, visibility=POISON_VISIBILITY_TIMEOUT)
    wait_terminal(crafted, "the third delivery to fail the job")
    assert crafted.status == SplitJob.Status.FAILED
    assert crafted.error_code == "WORKER_LOST"
    assert "2 runs of this job in a row ended with their worker process" in crafted.error_message
    assert_next_job_succeeds(survivor, tmp_path)
    wait_for(lambda: runs.unacked() == [], what="the failed job's message to be acknowledged")
    record_reliability("poison-message", jobs=2, crashes=2)


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
