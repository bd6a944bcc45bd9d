"""Every job ends: crashing engines, dead workers, unexpected errors, reconcile limits, deletion.

The tasks run in this process (``.apply()``), against the real database, storage
and engine child processes; the tests with a real Celery worker are in
``test_worker_crash.py``. Mocks stand in only for faults a real part cannot be
made to produce here (a full disk).
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from django.core.files.storage import FileSystemStorage
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from django_aistemsplitter import dispatch, services, signals
from django_aistemsplitter.backends.local import LocalBackend
from django_aistemsplitter.jobs import liveness_window
from django_aistemsplitter.models import SplitJob, Stem
from django_aistemsplitter.steps import reconcile
from django_aistemsplitter.tasks import ingest_split, submit_split
from django_aistemsplitter.workdirs import STAGING_PREFIX
from tests.conftest import make_wav
from tests.django.conftest import hosted_settings
from tests.reliability import record_reliability
from tests.sandbox_process import SandboxProcess
from tests.testapp.models import Track
from tests.waiting import wait_for

ENGINES = "tests.django.crashing_engines"
FAKE = "tests.django.fakes.FakeRemoteBackend"
MODEL_STEMS = ["bass", "drums", "other", "vocals"]


@pytest.fixture
def failures() -> Iterator[list[tuple[str, str, str]]]:
    """``split_failed`` as received: (job id, code, message)."""
    got: list[tuple[str, str, str]] = []

    def on_failed(
        sender: Any, job: SplitJob, error_code: str, error_message: str, **_: Any
    ) -> None:
        got.append((str(job.pk), error_code, error_message))

    signals.split_failed.connect(on_failed, dispatch_uid="test-job-lifetime")
    yield got
    signals.split_failed.disconnect(dispatch_uid="test-job-lifetime")


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Steps sent to the workers, recorded instead of queued: (step, job id)."""
    got: list[tuple[str, str]] = []

    def record(step: dispatch.Step, job_id: str, kwargs: Any, countdown: Any) -> None:
        got.append((step.value, job_id))

    monkeypatch.setattr(dispatch, "_sender", record)
    return got


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own TMPDIR, so leftover staging dirs can be listed."""
    import tempfile

    path = tmp_path / "tmp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


class Jobs:
    """Jobs made and run in this process, on the test's settings and on-commit capture."""

    def __init__(self, settings: Any, capture: Callable[..., Any]) -> None:
        self.settings = settings
        self.capture = capture

    def configure(self, **values: Any) -> None:
        """Override these ``AISTEMSPLITTER`` values for the test."""
        self.settings.AISTEMSPLITTER = {**self.settings.AISTEMSPLITTER, **values}

    def new(self, path: Path) -> SplitJob:
        """A job whose submit step is not sent (the test runs it)."""
        with self.capture():
            return services.split(path)

    def submit(self, job: SplitJob) -> Any:
        """Run ``job``'s submit step here, then its on-commit callbacks; the task's result."""
        with self.capture(execute=True):
            result = submit_split.apply(args=[str(job.pk)])
        job.refresh_from_db()
        return result


@pytest.fixture
def jobs(
    settings: Any, media_root: Path, django_capture_on_commit_callbacks: Callable[..., Any]
) -> Jobs:
    """Make and run jobs here, their files under this test's own media root."""
    return Jobs(settings, django_capture_on_commit_callbacks)


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def stem_paths(job: SplitJob) -> list[Path]:
    return [Path(stem.file.path) for stem in job.stems.all()]


# --- an engine that dies fails its job, never the worker -----------------------------


@pytest.mark.reliability("poison-message")
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("engine", "words"),
    [
        ("SegfaultEngine", "SIGSEGV (a crash in native code)"),
        ("OomKilledEngine", "SIGKILL (killed, most likely by the out-of-memory killer)"),
        ("ExitingEngine", "exited with status 7"),
    ],
    ids=["segfault", "oom-kill", "exit"],
)
def test_an_engine_that_dies_fails_its_job_and_the_next_job_runs(
    engine: str,
    words: str,
    jobs: Jobs,
    media_root: Path,
    temp_dir: Path,
    tmp_path: Path,
    failures: list[tuple[str, str, str]],
) -> None:
    jobs.configure(ENGINE=f"{ENGINES}.{engine}")
    crafted = jobs.new(make_wav(tmp_path / "mono.wav", channels=1))

    assert jobs.submit(crafted).get() == "failed"
    assert crafted.status == SplitJob.Status.FAILED
    assert crafted.error_code == "ENGINE_CRASHED"
    assert words in crafted.error_message
    assert failures == [(str(crafted.pk), "ENGINE_CRASHED", crafted.error_message)]
    assert crafted.unfinished_runs == 0 and crafted.heartbeat_at is None  # the run ended
    assert files_under(media_root) == [crafted.audio.name]
    assert list(temp_dir.glob(f"{STAGING_PREFIX}*")) == []

    # This process, the "worker", lived through it: the next job runs on the same engine.
    healthy = jobs.new(make_wav(tmp_path / "stereo.wav"))
    assert jobs.submit(healthy).get() == "succeeded"
    assert sorted(s.name for s in healthy.stems.all()) == MODEL_STEMS
    record_reliability("poison-message", jobs=2, crashes=1)


@pytest.mark.reliability("poison-message")
@pytest.mark.django_db
def test_engine_errors_cross_the_process_boundary_as_themselves(
    settings: Any, media_root: Path, wav_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error the engine raises (not a death) keeps its class and message."""
    from django_aistemsplitter.engines.isolation import separate_in_child
    from django_aistemsplitter.exceptions import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match="does not serve model 'nope'"):
        separate_in_child(
            "passthrough", {}, wav_file, media_root / "out", "nope", "wav", lambda f: None
        )


@pytest.mark.reliability("poison-message")
@pytest.mark.django_db
def test_progress_and_heartbeats_come_back_from_the_engine_process(
    jobs: Jobs, tmp_path: Path
) -> None:
    # Two 30 s blocks, then a quiet engine: fractions, then the last one repeated.
    long = make_wav(tmp_path / "long.wav", seconds=45, channels=1)
    job = jobs.new(long)
    calls: list[float] = []
    result = LocalBackend().run(job, calls.append)
    try:
        assert sorted(result.files) == MODEL_STEMS
        assert calls[-1] == 1.0 and calls == sorted(calls)
        assert set(calls) - {0.0, 1.0}  # block by block, not only "done"
    finally:
        result.cleanup()

    jobs.configure(
        RECONCILE_AFTER=0.4,
        ENGINE=f"{ENGINES}.SlowEngine",
        ENGINE_OPTIONS={"seconds": 1.0},
    )
    quiet: list[float] = []
    result = LocalBackend().run(job, quiet.append)
    result.cleanup()
    assert quiet.count(0.0) >= 2, quiet  # beats while the engine said nothing


# --- runs whose worker died ------------------------------------------------------------


@pytest.mark.reliability("poison-message")
@pytest.mark.django_db
def test_a_job_whose_runs_keep_dying_fails_instead_of_running_again(
    jobs: Jobs,
    wav_file: Path,
    failures: list[tuple[str, str, str]],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    jobs.configure(MAX_UNFINISHED_RUNS=3)
    survivor = jobs.new(wav_file)
    # Two runs died (their count was never taken back): a third one still runs.
    SplitJob.objects.filter(pk=survivor.pk).update(unfinished_runs=2)
    assert jobs.submit(survivor).get() == "succeeded"
    assert survivor.unfinished_runs == 0

    poison = jobs.new(wav_file)
    SplitJob.objects.filter(pk=poison.pk).update(unfinished_runs=3, status="processing")
    assert jobs.submit(poison).get() == "failed: worker lost"
    assert poison.status == SplitJob.Status.FAILED
    assert poison.error_code == "WORKER_LOST"
    assert "3 runs of this job in a row ended with their worker process" in poison.error_message
    assert poison.unfinished_runs == 0
    assert poison.stems.count() == 0
    assert [code for _, code, _ in failures] == ["WORKER_LOST"]

    # A retry starts over, with every counter back at zero.
    SplitJob.objects.filter(pk=poison.pk).update(reconcile_attempts=4)
    with django_capture_on_commit_callbacks():
        services.retry(poison)
    poison.refresh_from_db()
    assert (poison.status, poison.unfinished_runs, poison.reconcile_attempts) == ("pending", 0, 0)
    assert poison.submitted_at is None and poison.heartbeat_at is None


@pytest.mark.reliability("poison-message")
@pytest.mark.django_db
def test_a_live_run_is_not_a_dead_one(
    jobs: Jobs, wav_file: Path, failures: list[tuple[str, str, str]]
) -> None:
    """Unfinished runs that still beat are alive: a second delivery waits, fails nothing."""
    jobs.configure(MAX_UNFINISHED_RUNS=3)
    job = jobs.new(wav_file)
    SplitJob.objects.filter(pk=job.pk).update(unfinished_runs=3, heartbeat_at=timezone.now())
    outcome = jobs.submit(job).get()
    assert outcome.startswith("skipped: ") and "another run is alive" in outcome
    assert (job.status, job.unfinished_runs) == ("pending", 3)  # nothing counted, nothing run
    assert failures == []
    # Once the heartbeat is older than the liveness window, those runs were dead.
    stale = timezone.now() - timedelta(seconds=liveness_window() + 1)
    SplitJob.objects.filter(pk=job.pk).update(heartbeat_at=stale)
    assert jobs.submit(job).get() == "failed: worker lost"
    assert job.error_code == "WORKER_LOST"


@pytest.mark.reliability("poison-message")
@pytest.mark.redis
@pytest.mark.django_db
def test_a_delivery_beside_a_live_run_is_sent_again_later(jobs: Jobs, wav_file: Path) -> None:
    """In a worker the second delivery becomes a new message for later, not a retry."""
    import uuid

    import redis

    from tests.celery_app import app
    from tests.services import REDIS, require

    require(REDIS)
    queue = f"aiss-nowhere-{uuid.uuid4().hex[:8]}"
    jobs.configure(TASK_QUEUE=queue, RECONCILE_AFTER=4.0)
    job = jobs.new(wav_file)
    SplitJob.objects.filter(pk=job.pk).update(unfinished_runs=1, heartbeat_at=timezone.now())
    broker = redis.Redis.from_url(app.conf.broker_write_url)
    submit_split.push_request(
        id=str(uuid.uuid4()), args=[str(job.pk)], kwargs={}, retries=0, called_directly=False
    )
    try:
        outcome = submit_split(str(job.pk))
        queued = broker.llen(queue)
    finally:
        submit_split.pop_request()
        broker.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    assert outcome == f"deferred 3 s: split job {job.pk}: another run is alive"
    assert queued == 1
    job.refresh_from_db()
    assert (job.status, job.unfinished_runs) == ("pending", 1)


@pytest.mark.reliability("poison-message")
@pytest.mark.django_db
def test_runs_that_end_in_an_error_do_not_count_as_dead(
    jobs: Jobs, settings: Any, sandbox_factory: Callable[..., SandboxProcess], wav_file: Path
) -> None:
    """Each retried run raised (the service kept answering 429/500): none is left counted."""
    sandbox = sandbox_factory(fail_rate=1.0, retry_after_seconds=0)
    settings.AISTEMSPLITTER = hosted_settings(
        sandbox, HTTP_MAX_RETRIES=0, TASK_MAX_RETRIES=3, MAX_UNFINISHED_RUNS=2
    )
    job = jobs.new(wav_file)
    result = jobs.submit(job)
    assert result.failed()
    assert job.status == SplitJob.Status.FAILED
    assert job.error_code != "WORKER_LOST"
    assert "gave up after 3 retries" in job.error_message
    assert job.unfinished_runs == 0


# --- an unexpected error in a task fails the job ----------------------------------------


@pytest.mark.reliability("terminal-states")
@pytest.mark.django_db
def test_an_invalid_stem_url_fails_the_job(
    jobs: Jobs,
    wav_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    failures: list[tuple[str, str, str]],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    """httpx refuses the URL (``InvalidURL``, not a transport error): the job still ends."""
    from tests.django.fakes import FakeRemoteBackend

    url = "http://127.0.0.1/vocals\x00.wav"
    monkeypatch.setattr(FakeRemoteBackend, "stems", {"vocals": url})
    jobs.configure(BACKEND=FAKE, ALLOW_HTTP_DOWNLOADS=True, ALLOWED_DOWNLOAD_HOSTS=["127.0.0.1"])
    job = jobs.new(wav_file)
    jobs.submit(job)
    with django_capture_on_commit_callbacks(execute=True):
        ingest_split.apply(args=[str(job.pk)])
    job.refresh_from_db()
    assert job.status == SplitJob.Status.FAILED, job.status
    assert job.error_code and job.error_message
    assert [(pk, code) for pk, code, _ in failures] == [(str(job.pk), job.error_code)]
    assert job.stems.count() == 0 and job.unfinished_runs == 0


@pytest.mark.reliability("terminal-states")
@pytest.mark.django_db
def test_a_full_disk_fails_the_job_and_leaves_no_file(
    jobs: Jobs,
    media_root: Path,
    wav_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    failures: list[tuple[str, str, str]],
) -> None:
    job = jobs.new(wav_file)
    real_save = FileSystemStorage._save
    saved: list[str] = []

    def save_until_full(self: FileSystemStorage, name: str, content: Any) -> str:
        if len(saved) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        saved.append(name)
        return str(real_save(self, name, content))

    monkeypatch.setattr(FileSystemStorage, "_save", save_until_full)
    result = jobs.submit(job)
    assert result.failed()
    assert job.status == SplitJob.Status.FAILED
    assert "No space left on device" in job.error_message
    assert failures == [(str(job.pk), job.error_code, job.error_message)]
    assert job.stems.count() == 0
    assert files_under(media_root) == [job.audio.name]  # the two stems written were removed


@pytest.mark.reliability("terminal-states")
@pytest.mark.django_db
@pytest.mark.parametrize("backend", ["local", "hosted"])
def test_a_source_deleted_from_storage_fails_the_job(
    backend: str,
    jobs: Jobs,
    settings: Any,
    sandbox: SandboxProcess,
    wav_file: Path,
    failures: list[tuple[str, str, str]],
) -> None:
    if backend == "hosted":
        settings.AISTEMSPLITTER = hosted_settings(sandbox)
    job = jobs.new(wav_file)
    Path(job.audio.path).unlink()
    result = jobs.submit(job)
    assert result.failed()
    assert job.status == SplitJob.Status.FAILED
    assert "FileNotFoundError" in job.error_message
    assert failures == [(str(job.pk), job.error_code, job.error_message)]
    assert job.unfinished_runs == 0


# --- reconcile: an attempt cap, a deadline, and live runs left alone ---------------------


def age(job: SplitJob, **fields: Any) -> None:
    """Make ``job`` look untouched for an hour (plus ``fields``)."""
    hour_ago = timezone.now() - timedelta(hours=1)
    SplitJob.objects.filter(pk=job.pk).update(updated_at=hour_ago, **fields)


@pytest.mark.reliability("terminal-states")
@pytest.mark.django_db
def test_reconcile_gives_up_after_its_attempts(
    jobs: Jobs, wav_file: Path, sent: list[tuple[str, str]], failures: list[tuple[str, str, str]]
) -> None:
    jobs.configure(RECONCILE_MAX_ATTEMPTS=2)
    job = jobs.new(wav_file)  # its submit is lost...
    for _ in range(2):  # ...and so is every resubmission
        age(job)
        assert reconcile()["submitted"] == 1
    age(job)
    counts = reconcile()
    assert counts["gave_up"] == 1 and counts["submitted"] == 0
    assert sent == [("submit", str(job.pk))] * 2
    job.refresh_from_db()
    assert job.status == SplitJob.Status.FAILED and job.error_code == "RECONCILE_EXHAUSTED"
    assert "after 2 reconciliation attempts" in job.error_message
    assert [code for _, code, _ in failures] == ["RECONCILE_EXHAUSTED"]
    age(job)
    assert not any(reconcile().values())  # terminal: nothing more


@pytest.mark.reliability("terminal-states")
@pytest.mark.django_db
def test_reconcile_fails_jobs_past_their_deadline(
    jobs: Jobs, wav_file: Path, sent: list[tuple[str, str]], failures: list[tuple[str, str, str]]
) -> None:
    jobs.configure(JOB_TIMEOUT=600.0)
    long_ago = timezone.now() - timedelta(seconds=601)
    submitted = jobs.new(wav_file)
    # Submitted too long ago, even though a worker beat just now.
    SplitJob.objects.filter(pk=submitted.pk).update(
        status="processing", submitted_at=long_ago, attempts=1, heartbeat_at=timezone.now()
    )
    never_submitted = jobs.new(wav_file)
    SplitJob.objects.filter(pk=never_submitted.pk).update(created_at=long_ago)
    # Retried (attempts behind it) and waiting for its new submission: no deadline yet.
    retried = jobs.new(wav_file)
    SplitJob.objects.filter(pk=retried.pk).update(created_at=long_ago, attempts=1)
    fresh = jobs.new(wav_file)

    counts = reconcile()
    assert counts["timed_out"] == 2
    for job in (submitted, never_submitted):
        job.refresh_from_db()
        assert (job.status, job.error_code) == ("failed", "JOB_TIMEOUT")
        assert "JOB_TIMEOUT (600 s)" in job.error_message
    for job in (retried, fresh):
        job.refresh_from_db()
        assert job.status == SplitJob.Status.PENDING
    assert sorted(code for _, code, _ in failures) == ["JOB_TIMEOUT", "JOB_TIMEOUT"]


class SlowRun(NamedTuple):
    """A job whose submit step runs in a thread (see ``start_slow_run``)."""

    job: SplitJob
    thread: threading.Thread  #: runs the job's submit step
    outcome: list[Any]  #: what the step returned (or raised), once the thread ends
    runs: Path  #: one file per engine run


@pytest.fixture
def start_slow_run(
    jobs: Jobs, wav_file: Path, tmp_path: Path, sent: list[tuple[str, str]]
) -> Callable[..., SlowRun]:
    """Start a job whose submit runs in a thread on ``SlowEngine`` (quiet for ``seconds``).

    It returns once the engine has started. The job is made in a committed
    transaction, so its own submit message goes to ``sent``: the thread runs it.
    """

    def start(*, seconds: float, reconcile_after: float) -> SlowRun:
        runs = tmp_path / "runs"
        runs.mkdir()
        jobs.configure(
            RECONCILE_AFTER=reconcile_after,
            ENGINE=f"{ENGINES}.SlowEngine",
            ENGINE_OPTIONS={"seconds": seconds, "runs_dir": str(runs)},
        )
        job = services.split(wav_file)
        outcome: list[Any] = []

        def run() -> None:
            try:
                outcome.append(submit_split.apply(args=[str(job.pk)]).get())
            except BaseException as exc:
                outcome.append(exc)
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        wait_for(lambda: any(runs.iterdir()), what="the engine to start")
        return SlowRun(job, thread, outcome, runs)

    return start


@pytest.mark.reliability("terminal-states")
@pytest.mark.django_db(transaction=True)
def test_reconcile_leaves_a_long_running_job_alone(
    start_slow_run: Callable[..., SlowRun], sent: list[tuple[str, str]]
) -> None:
    """The engine says nothing for seconds; the run's heartbeat keeps reconcile away."""
    job, thread, outcome, runs = start_slow_run(seconds=6.0, reconcile_after=2.0)
    nudged = []
    while thread.is_alive():
        nudged.append(reconcile())
        thread.join(0.5)
    assert outcome == ["succeeded"]
    assert len(nudged) >= 4  # reconcile looked well after RECONCILE_AFTER had passed
    assert not any(c["submitted"] for c in nudged), nudged
    assert sent == [("submit", str(job.pk))]  # only the creation's own
    assert len(list(runs.iterdir())) == 1
    job.refresh_from_db()
    assert job.status == SplitJob.Status.SUCCEEDED and job.heartbeat_at is None


@pytest.mark.reliability("terminal-states")
@pytest.mark.django_db(transaction=True)
def test_cancelling_stops_a_local_run(
    start_slow_run: Callable[..., SlowRun], media_root: Path, temp_dir: Path
) -> None:
    job, thread, outcome, _ = start_slow_run(seconds=120.0, reconcile_after=1.0)
    assert services.cancel(job)
    thread.join(60)
    assert not thread.is_alive(), "the run went on after the job was cancelled"
    assert outcome == ["stopped: cancelled"]
    job.refresh_from_db()
    assert job.status == SplitJob.Status.CANCELLED and job.unfinished_runs == 0
    assert files_under(media_root) == [job.audio.name]
    assert list(temp_dir.glob(f"{STAGING_PREFIX}*")) == []


# --- deleting a job deletes its files, once the deletion commits --------------------------


@pytest.fixture
def finished_job(jobs: Jobs, media_root: Path, wav_file: Path) -> SplitJob:
    job = jobs.new(wav_file)
    assert jobs.submit(job).get() == "succeeded"
    assert len(files_under(media_root)) == 5
    return job


def job_files(job: SplitJob) -> list[Path]:
    return [Path(job.audio.path), *stem_paths(job)]


@pytest.mark.reliability("terminal-states")
@pytest.mark.django_db
@pytest.mark.parametrize("how", ["instance", "queryset"])
def test_deleting_a_job_deletes_its_files_after_commit(
    how: str,
    finished_job: SplitJob,
    media_root: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    files = job_files(finished_job)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        if how == "instance":
            finished_job.delete()
        else:
            SplitJob.objects.filter(pk=finished_job.pk).delete()
        assert all(p.exists() for p in files)  # not before the commit
    assert len(callbacks) == 5
    assert not any(p.exists() for p in files)
    assert files_under(media_root) == []
    assert not Stem.objects.exists()


@pytest.mark.reliability("terminal-states")
@pytest.mark.django_db
def test_a_rolled_back_delete_keeps_the_files(
    finished_job: SplitJob, media_root: Path, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    files = job_files(finished_job)
    pk = finished_job.pk
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        finished_job.delete()
        raise RuntimeError("changed my mind")
    assert SplitJob.objects.filter(pk=pk).exists()
    assert all(p.exists() for p in files)


@pytest.mark.reliability("terminal-states")
@pytest.mark.django_db
def test_the_admin_delete_deletes_the_files(
    finished_job: SplitJob,
    admin_client: Any,
    media_root: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    url = reverse("admin:aistemsplitter_splitjob_delete", args=[finished_job.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not SplitJob.objects.filter(pk=finished_job.pk).exists()
    assert files_under(media_root) == []


@pytest.mark.reliability("terminal-states")
@pytest.mark.django_db
def test_deleting_a_registered_instance_deletes_its_jobs_and_files(
    media_root: Path,
    tmp_path: Path,
    celery_eager: None,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    from django.core.files import File

    from django_aistemsplitter import register
    from django_aistemsplitter.registry import unregister

    register(Track, field="audio")
    try:
        track = Track.objects.create(title="song")
        other = Track.objects.create(title="another")
        with django_capture_on_commit_callbacks(execute=True):
            for item in (track, other):
                with open(make_wav(tmp_path / f"{item.title}.wav"), "rb") as fh:
                    item.audio.save(f"{item.title}.wav", File(fh), save=True)
        job = SplitJob.objects.for_object(track).get()
        assert job.status == SplitJob.Status.SUCCEEDED
        files = job_files(job)
        with django_capture_on_commit_callbacks(execute=True):
            track.delete()
        assert not SplitJob.objects.for_object(other).filter(pk=job.pk).exists()
        assert not SplitJob.objects.filter(pk=job.pk).exists()
        assert not any(p.exists() for p in files)
        assert SplitJob.objects.for_object(other).count() == 1  # another's jobs stay
    finally:
        unregister(Track)


# --- system checks of the limits ---------------------------------------------------------


@pytest.mark.reliability("terminal-states")
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, []),
        ({"JOB_TIMEOUT": None, "MAX_UNFINISHED_RUNS": 1, "RECONCILE_MAX_ATTEMPTS": 1}, []),
        ({"MAX_UNFINISHED_RUNS": 0}, ["aistemsplitter.E020"]),
        ({"RECONCILE_MAX_ATTEMPTS": 2.5}, ["aistemsplitter.E020"]),
        ({"RECONCILE_MAX_ATTEMPTS": "10"}, ["aistemsplitter.E020"]),
        ({"JOB_TIMEOUT": -1}, ["aistemsplitter.E020"]),
        ({"JOB_TIMEOUT": float("inf")}, ["aistemsplitter.E020"]),
        ({"JOB_TIMEOUT": 60, "RECONCILE_AFTER": 900}, ["aistemsplitter.W020"]),
    ],
    ids=["defaults", "tight", "no-runs", "fraction", "string", "negative", "infinite", "short"],
)
def test_lifetime_limits_are_checked(
    settings: Any, values: dict[str, Any], expected: list[str]
) -> None:
    from django_aistemsplitter.checks import check_job_lifetime

    settings.AISTEMSPLITTER = {"BACKEND": "local", "ENGINE": "passthrough", **values}
    assert sorted(m.id for m in check_job_lifetime()) == expected
