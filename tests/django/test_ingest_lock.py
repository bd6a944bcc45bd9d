"""Ingest writes stems to storage before it locks the job's row, and queues once.

Issue 14, item 4, on PostgreSQL:

* ``commit_stems`` uploads every stem first and only then takes the job's row
  lock, for the rows alone: a webhook, a cancel or a heartbeat for the job goes
  through while a big stem is still being written. A storage held mid-save (a
  ``threading.Event``, since a real storage cannot be made slow on demand) shows
  it; the other connection runs with ``lock_timeout``, so a row lock held across
  the save fails it at once instead of hanging the test (no timing is asserted:
  the lock would be held until the test releases the storage).
* A run that finds, once it has the lock, that the job is no longer ingestible
  (cancelled, or stored by another run meanwhile) deletes the files it has just
  written and changes nothing else.
* A poll and a webhook reporting the same success queue one ingest: the first to
  move the job to ``downloading`` (a conditional UPDATE) asks for it; the other
  sees the claim.

``AISTEMSPLITTER_MEASURE_LOCK_WAIT=1`` also runs :func:`test_measure_webhook_wait`,
which prints how long a webhook for the job waits while a big stem is saved
(a figure, not an assertion).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from django.core.files.storage import FileSystemStorage
from django.db import connection
from django.test import Client
from django.utils import timezone

from django_aistemsplitter import contract, dispatch, jobs, services, steps
from django_aistemsplitter.client import AiStemSplitter
from django_aistemsplitter.client.signing import sign_payload
from django_aistemsplitter.client.types import Split
from django_aistemsplitter.dispatch import Step
from django_aistemsplitter.ingest import StagedStem, commit_stems, stage_local_files
from django_aistemsplitter.models import SplitJob, SplitStatus, Stem, WebhookEvent
from tests.conftest import make_wav
from tests.django.conftest import hosted_settings, sandbox_stats
from tests.sandbox_process import SandboxProcess
from tests.waiting import wait_for
from tests.worker import WorkerProcess

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SPLIT_ID = "split_lock_test"
SECRET = "whsec_test_ingest_lock_0123456789"
STEMS = list(contract.FOUR_STEMS)


class HeldStorage(FileSystemStorage):
    """A file storage whose first stem save stops until the test releases it."""

    started: ClassVar[threading.Event] = threading.Event()
    release: ClassVar[threading.Event] = threading.Event()
    hold: ClassVar[bool] = True
    saved: ClassVar[list[str]] = []

    def _save(self, name: str, content: Any) -> str:
        first = not HeldStorage.started.is_set()
        HeldStorage.started.set()
        if first and HeldStorage.hold:
            assert HeldStorage.release.wait(120), "the test never released the storage"
        saved = super()._save(name, content)
        HeldStorage.saved.append(saved)
        return saved


@pytest.fixture
def held_storage(settings: Any, media_root: Path) -> Iterator[type[HeldStorage]]:
    HeldStorage.started = threading.Event()
    HeldStorage.release = threading.Event()
    HeldStorage.hold = True
    HeldStorage.saved = []
    settings.STORAGES = {
        "default": {
            "BACKEND": f"{__name__}.HeldStorage",
            "OPTIONS": {"location": str(media_root)},
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    yield HeldStorage
    HeldStorage.release.set()


@pytest.fixture
def webhook_settings(settings: Any) -> None:
    settings.AISTEMSPLITTER = {
        "BACKEND": "hosted",
        "API_KEY": "ast_test_key",
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_BASE_URL": "https://app.example.com",
        "TASK_QUEUE": "nowhere-never-consumed",
    }


@pytest.fixture(name="sent")
def sent_fixture(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Step, str]]:
    """Every step sent to the workers (the dispatch sender replaced by a recorder).

    Thread-safe, for runs on other connections. Named with ``name=`` so that
    ``test_reconcile_batches`` imports it as ``sent_fixture`` and its tests'
    ``sent`` parameters do not shadow the import.
    """
    messages: list[tuple[Step, str]] = []
    lock = threading.Lock()

    def record(step: Step, job_id: str, kwargs: dict[str, Any], countdown: float | None) -> None:
        with lock:
            messages.append((step, job_id))

    monkeypatch.setattr(dispatch, "_sender", record)
    return messages


def downloading_job(**fields: Any) -> SplitJob:
    values: dict[str, Any] = {
        "stem_model": "htdemucs_ft",
        "backend": "hosted",
        "remote_id": SPLIT_ID,
        "status": SplitStatus.DOWNLOADING,
        "source_url": "https://example.com/song.mp3",
        "progress": 1.0,
        **fields,
    }
    return SplitJob.objects.create(**values)


def staged_stems(tmp_path: Path) -> list[StagedStem]:
    folder = tmp_path / "staged"
    folder.mkdir(parents=True)
    return stage_local_files({name: make_wav(folder / f"{name}.wav", 0.5) for name in STEMS})


def succeeded_event(event_id: str = "evt_lock_1", credits: int = 42) -> bytes:
    data = {
        "id": SPLIT_ID,
        "status": contract.SUCCEEDED,
        "stemModel": "htdemucs_ft",
        "filename": "song.mp3",
        "durationSeconds": 180.0,
        "creditsUsed": credits,
        "progress": 1.0,
        "createdAt": "2025-01-01T00:00:00Z",
        "updatedAt": "2025-01-01T00:02:00Z",
        "stems": {s: f"https://cdn.example.com/{SPLIT_ID}/{s}.wav" for s in STEMS},
        "error": None,
        "metadata": {},
    }
    event = {"id": event_id, "type": "split.succeeded", "created": int(time.time()), "data": data}
    return json.dumps(event).encode()


def post_webhook(raw: bytes) -> Any:
    return Client().post(
        "/aistemsplitter/webhook/",
        raw,
        content_type="application/json",
        headers={contract.SIGNATURE_HEADER: sign_payload(raw, SECRET)},
    )


class Commit(threading.Thread):
    """``commit_stems`` on a connection of its own."""

    def __init__(self, job: SplitJob, staged: list[StagedStem], **kwargs: Any) -> None:
        super().__init__(daemon=True)
        self.job = SplitJob.objects.get(pk=job.pk)
        self.staged = staged
        self.kwargs = kwargs
        self.result: bool | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = commit_stems(self.job, self.staged, **self.kwargs)
        except BaseException as exc:
            self.error = exc
        finally:
            connection.close()


def lock_timeout(value: str | None) -> None:
    """Make this connection's statements give up on a row lock (None: wait again)."""
    with connection.cursor() as cursor:
        if value is None:
            cursor.execute("RESET lock_timeout")
        else:
            cursor.execute(f"SET lock_timeout = '{value}'")


def stem_files(media_root: Path, job: SplitJob) -> list[str]:
    folder = media_root / "aistemsplitter" / "stems" / str(job.pk)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- the row lock does not cover the upload -------------------------------------------


def test_a_webhook_for_the_job_is_not_blocked_while_a_stem_is_saved(
    held_storage: type[HeldStorage],
    webhook_settings: None,
    sent: list[tuple[Step, str]],
    media_root: Path,
    tmp_path: Path,
) -> None:
    job = downloading_job()
    commit = Commit(job, staged_stems(tmp_path))
    commit.start()
    assert held_storage.started.wait(60), "the commit never started to store a stem"
    lock_timeout("2s")
    try:
        response = post_webhook(succeeded_event())
        # Other writers of the row: a worker's heartbeat and the admin's cancel check.
        assert jobs.heartbeat(job)
    finally:
        lock_timeout(None)
        still_saving = commit.is_alive()
        held_storage.release.set()
    commit.join(60)
    assert still_saving, "the stem save was not held while the webhook ran"
    assert response.status_code == 200, response.content
    assert response.json()["outcome"] == "processed"
    assert WebhookEvent.objects.get().outcome == WebhookEvent.Outcome.PROCESSED
    assert commit.error is None and commit.result is True
    job.refresh_from_db()
    assert job.status == SplitStatus.SUCCEEDED
    assert job.credits_used == 42  # the webhook's write, made while the stem was saved
    assert sorted(job.stems.values_list("name", flat=True)) == sorted(STEMS)
    assert stem_files(media_root, job) == sorted(f"{name}.wav" for name in STEMS)
    assert [step for step, _ in sent] == []  # the job was already downloading: no ingest


def test_a_job_cancelled_during_the_upload_keeps_no_file(
    held_storage: type[HeldStorage], webhook_settings: None, media_root: Path, tmp_path: Path
) -> None:
    job = downloading_job()
    commit = Commit(job, staged_stems(tmp_path))
    commit.start()
    assert held_storage.started.wait(60)
    lock_timeout("2s")
    try:
        cancelled = services.cancel(SplitJob.objects.get(pk=job.pk))
    finally:
        lock_timeout(None)
        held_storage.release.set()
    commit.join(60)
    assert cancelled
    assert commit.error is None and commit.result is False
    assert held_storage.saved, "the run wrote nothing: the test proves nothing"
    job.refresh_from_db()
    assert job.status == SplitStatus.CANCELLED
    assert Stem.objects.filter(job=job).count() == 0
    assert stem_files(media_root, job) == []  # what the run wrote is gone again


def test_a_run_that_loses_to_another_deletes_its_files_and_keeps_the_winners(
    held_storage: type[HeldStorage], webhook_settings: None, media_root: Path, tmp_path: Path
) -> None:
    job = downloading_job()
    loser = Commit(job, staged_stems(tmp_path / "a"))
    loser.start()
    assert held_storage.started.wait(60)
    winner = Commit(job, staged_stems(tmp_path / "b"))
    lock_timeout("2s")
    try:
        winner.run()  # here, on this connection: it must not wait for the loser's save
    finally:
        lock_timeout(None)
        held_storage.release.set()
    loser.join(60)
    assert winner.error is None and winner.result is True
    assert loser.error is None and loser.result is False
    job.refresh_from_db()
    assert job.status == SplitStatus.SUCCEEDED
    stems = list(job.stems.all())
    assert sorted(s.name for s in stems) == sorted(STEMS)
    # Only the winner's files are left; the loser's, whatever name it got, are gone.
    assert stem_files(media_root, job) == sorted(Path(s.file.name).name for s in stems)
    assert len(stem_files(media_root, job)) == len(STEMS)
    for stem in stems:
        assert (media_root / stem.file.name).exists()


def test_a_redownload_that_finds_the_job_gone_leaves_no_file(
    held_storage: type[HeldStorage], webhook_settings: None, media_root: Path, tmp_path: Path
) -> None:
    job = downloading_job()
    held_storage.hold = False
    assert commit_stems(job, staged_stems(tmp_path / "first"))
    held_storage.started = threading.Event()
    held_storage.hold = True
    replace = Commit(job, staged_stems(tmp_path / "again"), replace=True)
    replace.start()
    assert held_storage.started.wait(60)
    lock_timeout("2s")
    try:
        SplitJob.objects.filter(pk=job.pk).delete()
    finally:
        lock_timeout(None)
        held_storage.release.set()
    replace.join(60)
    assert replace.error is None and replace.result is False
    assert stem_files(media_root, job) == []


# --- one ingest per success -------------------------------------------------------------


def submit_and_finish(wav_file: Path, sandbox: SandboxProcess) -> tuple[SplitJob, Split]:
    """A job this process submits to ``sandbox``, and its remote split once it has finished."""
    job = services.split(wav_file)
    assert steps.submit(SplitJob.objects.get(pk=job.pk)).startswith("submitted")
    job.refresh_from_db()
    with AiStemSplitter(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        client.wait_for_split(job.remote_id, timeout=30, interval=0.1)
        return job, client.get_split(job.remote_id)


def test_a_poll_and_a_webhook_for_the_same_success_queue_one_ingest(
    settings: Any,
    sandbox: SandboxProcess,
    sent: list[tuple[Step, str]],
    media_root: Path,
    wav_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both read the job as ``processing``, then both apply the success at once."""
    settings.AISTEMSPLITTER = hosted_settings(sandbox, TASK_QUEUE="nowhere-never-consumed")
    job, remote = submit_and_finish(wav_file, sandbox)
    SplitJob.objects.filter(pk=job.pk).update(status=SplitStatus.PROCESSING)
    sent.clear()

    real_apply = jobs.apply_remote_split
    both_read = threading.Barrier(2)

    def apply_together(job: SplitJob, split: Split) -> jobs.Applied:
        both_read.wait(30)  # each holds a copy of the job that says "processing"
        return real_apply(job, split)

    monkeypatch.setattr(jobs, "apply_remote_split", apply_together)
    outcomes: dict[str, Any] = {}
    errors: list[BaseException] = []

    def poll() -> None:
        try:
            outcomes["poll"] = steps.poll(SplitJob.objects.get(pk=job.pk))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def webhook() -> None:
        event = {
            "id": "evt_poll_race",
            "type": "split.succeeded",
            "created": int(time.time()),
            "data": dict(remote.raw),
        }
        raw = json.dumps(event).encode()
        try:
            outcomes["webhook"] = Client().post(
                "/aistemsplitter/webhook/",
                raw,
                content_type="application/json",
                headers={contract.SIGNATURE_HEADER: sign_payload(raw, sandbox.webhook_secret)},
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=poll), threading.Thread(target=webhook)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert outcomes["poll"] == contract.SUCCEEDED
    assert outcomes["webhook"].status_code == 200
    ingests = [job_id for step, job_id in sent if step == Step.INGEST]
    assert ingests == [str(job.pk)], sent
    job.refresh_from_db()
    assert job.status == SplitStatus.DOWNLOADING  # claimed: an ingest is queued

    # The one ingest stores the stems; asking again (a late redelivery) is a no-op.
    monkeypatch.setattr(jobs, "apply_remote_split", real_apply)
    assert steps.ingest(SplitJob.objects.get(pk=job.pk)) == "stored"
    assert steps.ingest(SplitJob.objects.get(pk=job.pk)).startswith("skipped")
    job.refresh_from_db()
    assert job.status == SplitStatus.SUCCEEDED and job.stems.count() == len(STEMS)


def test_with_a_real_worker_a_racing_poll_and_webhook_download_the_stems_once(
    worker_factory: Callable[..., WorkerProcess],
    sandbox_factory: Callable[..., SandboxProcess],
    wav_file: Path,
    media_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same race, with the ingest run by a real worker: one message, four downloads."""
    from django_aistemsplitter.tasks import send_step

    sandbox = sandbox_factory()
    worker = worker_factory(hosted_settings(sandbox))
    ingests: list[str] = []

    def sender(step: Step, job_id: str, kwargs: dict[str, Any], countdown: float | None) -> None:
        # This test drives submit and poll itself; only ingests go to the worker.
        if step == Step.INGEST:
            ingests.append(job_id)
            send_step(step, job_id, kwargs, countdown)

    monkeypatch.setattr(dispatch, "_sender", sender)
    job, remote = submit_and_finish(wav_file, sandbox)

    real_apply = jobs.apply_remote_split
    both_read = threading.Barrier(2)

    def apply_together(job: SplitJob, split: Split) -> jobs.Applied:
        both_read.wait(30)
        return real_apply(job, split)

    monkeypatch.setattr(jobs, "apply_remote_split", apply_together)
    raw = json.dumps(
        {"id": "evt_worker_race", "type": "split.succeeded", "data": dict(remote.raw)}
    ).encode()
    answers: list[Any] = []

    def webhook() -> None:
        try:
            answers.append(
                Client().post(
                    "/aistemsplitter/webhook/",
                    raw,
                    content_type="application/json",
                    headers={contract.SIGNATURE_HEADER: sign_payload(raw, sandbox.webhook_secret)},
                )
            )
        finally:
            connection.close()

    thread = threading.Thread(target=webhook)
    thread.start()
    polled = steps.poll(SplitJob.objects.get(pk=job.pk))
    thread.join(60)
    assert polled == contract.SUCCEEDED and answers[0].status_code == 200
    assert ingests == [str(job.pk)]

    def finished() -> bool:
        job.refresh_from_db()
        return job.is_terminal

    wait_for(finished, timeout=120, what="the worker to ingest the stems")
    assert job.status == SplitStatus.SUCCEEDED, job.error_message
    assert job.stems.count() == len(STEMS)
    received = [line for line in worker.log().splitlines() if "received" in line]
    assert len([line for line in received if "ingest_split[" in line]) == 1, received
    assert sandbox_stats(sandbox)["downloads"]["completed"] == len(STEMS)


def test_a_second_success_after_the_claim_queues_nothing(
    webhook_settings: None, sent: list[tuple[Step, str]]
) -> None:
    job = downloading_job(status=SplitStatus.PROCESSING, progress=0.5)
    split = Split(id=SPLIT_ID, status=contract.SUCCEEDED, progress=1.0, credits_used=7)
    first = jobs.mirror(SplitJob.objects.get(pk=job.pk), split)
    second = jobs.mirror(SplitJob.objects.get(pk=job.pk), split)
    stale_copy = job  # still says "processing": it lost the claim
    third = jobs.mirror(stale_copy, split)
    assert first.next_step == Step.INGEST
    assert second.next_step is None and third.next_step is None
    assert [step for step, _ in sent] == [Step.INGEST]
    job.refresh_from_db()
    assert (job.status, job.progress, job.credits_used) == (SplitStatus.DOWNLOADING, 1.0, 7)


def test_a_claimed_ingest_whose_message_was_lost_is_requeued_by_reconcile(
    webhook_settings: None, settings: Any, sent: list[tuple[Step, str]]
) -> None:
    """The claim is the job's status, so a lost message or a dead worker does not
    leave it stuck: once quiet for RECONCILE_AFTER, reconcile queues the ingest again."""
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "RECONCILE_AFTER": 60.0}
    job = downloading_job(status=SplitStatus.PROCESSING, progress=0.5)
    split = Split(id=SPLIT_ID, status=contract.SUCCEEDED, progress=1.0)
    assert jobs.mirror(job, split).next_step == Step.INGEST
    sent.clear()  # the message is lost
    assert steps.reconcile()["ingested"] == 0  # not quiet long enough yet
    SplitJob.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    assert steps.reconcile()["ingested"] == 1
    assert sent == [(Step.INGEST, str(job.pk))]
