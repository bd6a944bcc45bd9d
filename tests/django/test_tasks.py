"""Task guarantees against the sandbox, run in-process (no worker needed here)."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from django_aistemsplitter import services
from django_aistemsplitter.client import AiStemSplitter
from django_aistemsplitter.client.types import Split, SplitError
from django_aistemsplitter.jobs import mirror
from django_aistemsplitter.models import SplitJob, Stem
from django_aistemsplitter.tasks import ingest_split, reconcile_splits, submit_split
from tests.django.conftest import hosted_settings, sandbox_stats, sha256_of_url
from tests.django.fakes import FakeRemoteBackend
from tests.sandbox_process import SandboxProcess

FAKE = "tests.django.fakes.FakeRemoteBackend"


def stem_files(media: Path, job: SplitJob) -> list[str]:
    folder = media / "aistemsplitter" / "stems" / str(job.pk)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def submit_and_finish(
    settings: Any, sandbox: SandboxProcess, wav_file: Path, capture: Callable[..., Any]
) -> SplitJob:
    """A job submitted to ``sandbox`` whose remote split has finished."""
    settings.AISTEMSPLITTER = hosted_settings(sandbox)
    with capture():
        job = services.split(wav_file)
        submit_split.apply(args=[str(job.pk)]).get()
    job.refresh_from_db()
    assert job.status == SplitJob.Status.SUBMITTED and job.remote_id
    with AiStemSplitter(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        client.wait_for_split(job.remote_id, timeout=30, interval=0.1)
    return job


@pytest.fixture
def submitted_job(
    settings: Any,
    sandbox: SandboxProcess,
    media_root: Path,
    wav_file: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> SplitJob:
    """A job submitted to the session's sandbox whose remote split has finished."""
    return submit_and_finish(settings, sandbox, wav_file, django_capture_on_commit_callbacks)


@pytest.mark.django_db
def test_redelivered_submit_creates_one_remote_split(
    settings: Any,
    sandbox_factory: Callable[..., SandboxProcess],
    media_root: Path,
    wav_file: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    sandbox = sandbox_factory()
    job = submit_and_finish(settings, sandbox, wav_file, django_capture_on_commit_callbacks)
    first = job.remote_id
    with django_capture_on_commit_callbacks():
        # Delivered again while already submitted: a no-op.
        assert submit_split.apply(args=[str(job.pk)]).get().startswith("skipped")
        # The worker died after the remote create, before its DB write: replay.
        SplitJob.objects.filter(pk=job.pk).update(status="pending", remote_id="")
        submit_split.apply(args=[str(job.pk)]).get()
    job.refresh_from_db()
    assert job.remote_id == first
    stats = sandbox_stats(sandbox)
    assert stats["splits"] == 1, stats
    uploads = sum(n for route, n in stats["requests"].items() if "/audio/uploads" in route)
    assert uploads == 1, stats  # the remembered input is reused, not uploaded again


@pytest.mark.django_db
def test_ingest_twice_stores_each_stem_once(
    submitted_job: SplitJob,
    sandbox: SandboxProcess,
    media_root: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    job = submitted_job
    with django_capture_on_commit_callbacks(execute=True):
        assert ingest_split.apply(args=[str(job.pk)]).get() == "stored"
        assert ingest_split.apply(args=[str(job.pk)]).get().startswith("skipped")
    job.refresh_from_db()
    assert job.status == SplitJob.Status.SUCCEEDED
    assert Stem.objects.filter(job=job).count() == 4
    assert stem_files(media_root, job) == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]
    with AiStemSplitter(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        urls = client.get_split(job.remote_id).stems
    for stem in job.stems.all():
        assert stem.sha256 == sha256_of_url(urls[stem.name])


@pytest.mark.django_db
def test_redownload_replaces_stems_in_place(
    submitted_job: SplitJob,
    media_root: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    job = submitted_job
    with django_capture_on_commit_callbacks(execute=True):
        ingest_split.apply(args=[str(job.pk)]).get()
    vocals = job.stems.get(name="vocals")
    Path(vocals.file.path).unlink()  # lost from storage
    with django_capture_on_commit_callbacks() as callbacks:
        services.redownload(job)
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert ingest_split.apply(args=[str(job.pk)], kwargs={"force": True}).get() == "stored"
    assert job.stems.count() == 4
    assert Path(job.stems.get(name="vocals").file.path).exists()
    assert len(stem_files(media_root, job)) == 4


@pytest.mark.django_db(transaction=True)
def test_concurrent_ingests_store_each_stem_once(
    settings: Any, sandbox: SandboxProcess, media_root: Path, wav_file: Path
) -> None:
    settings.AISTEMSPLITTER = hosted_settings(sandbox, TASK_QUEUE="nowhere-never-consumed")
    job = services.split(wav_file)
    submit_split.apply(args=[str(job.pk)]).get()
    job.refresh_from_db()
    with AiStemSplitter(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        client.wait_for_split(job.remote_id, timeout=30, interval=0.1)
    results: list[str] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        try:
            barrier.wait()
            results.append(ingest_split.apply(args=[str(job.pk)]).get())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results.count("stored") == 1, results
    job.refresh_from_db()
    assert job.status == SplitJob.Status.SUCCEEDED
    assert job.stems.count() == 4
    assert stem_files(media_root, job) == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"ALLOWED_DOWNLOAD_HOSTS": ["cdn.example.com"]}, "not in ALLOWED_DOWNLOAD_HOSTS"),
        ({"ALLOW_HTTP_DOWNLOADS": False}, "only https is allowed"),
        ({"MAX_STEM_BYTES": 1000}, "over MAX_STEM_BYTES"),
    ],
    ids=["host", "http", "oversize"],
)
def test_refused_downloads_fail_the_job_and_store_nothing(
    settings: Any,
    submitted_job: SplitJob,
    media_root: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
    extra: dict[str, Any],
    message: str,
) -> None:
    job = submitted_job
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, **extra}
    with django_capture_on_commit_callbacks(execute=True):
        assert ingest_split.apply(args=[str(job.pk)]).get() == "failed"
    job.refresh_from_db()
    assert job.status == SplitJob.Status.FAILED
    assert message in job.error_message
    assert job.stems.count() == 0
    assert stem_files(media_root, job) == []


@pytest.mark.django_db
def test_unsafe_stem_name_fails_the_job(
    settings: Any,
    sandbox: SandboxProcess,
    submitted_job: SplitJob,
    media_root: Path,
    wav_file: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with AiStemSplitter(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        url = client.get_split(submitted_job.remote_id).stems["vocals"]
    monkeypatch.setattr(FakeRemoteBackend, "stems", {"vocals": url, "../../x": url})
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "BACKEND": FAKE}
    with django_capture_on_commit_callbacks(execute=True):
        job = services.split(wav_file)
        submit_split.apply(args=[str(job.pk)]).get()
        ingest_split.apply(args=[str(job.pk)]).get()
    job.refresh_from_db()
    assert job.status == SplitJob.Status.FAILED
    assert "unsafe stem name" in job.error_message
    assert job.stems.count() == 0 and stem_files(media_root, job) == []
    assert not any((media_root.parent).glob("x*"))


@pytest.mark.django_db
def test_mirroring_a_remote_split_is_forward_only(
    media_root: Path,
    wav_file: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
    settings: Any,
) -> None:
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "BACKEND": FAKE}
    failures: list[str] = []
    from django_aistemsplitter import signals

    def on_failed(sender: Any, job: SplitJob, error_code: str, **kwargs: Any) -> None:
        failures.append(error_code)

    signals.split_failed.connect(on_failed, dispatch_uid="test-forward")
    try:
        with django_capture_on_commit_callbacks() as callbacks:
            job = services.split(wav_file)
            job.advance(SplitJob.Status.SUBMITTED, remote_id="fake_1")
            assert mirror(job, Split(id="fake_1", status="processing", progress=0.5))
            assert job.status == "processing" and job.progress == 0.5
            # A stale "queued" after "processing" changes nothing.
            assert not mirror(job, Split(id="fake_1", status="queued", progress=0.1))
            job.refresh_from_db()
            assert job.status == "processing" and job.progress == 0.5
        n = len(callbacks)
        with django_capture_on_commit_callbacks() as callbacks:
            assert mirror(
                job, Split(id="fake_1", status="succeeded", duration_seconds=60.0, credits_used=60)
            )
        assert n == 1 and len(callbacks) == 1  # submit, then the ingest, each on commit
        with django_capture_on_commit_callbacks():
            job.refresh_from_db()
            assert job.credits_used == 60 and job.estimated_cost is not None
            err = SplitError(code="BOOM", message="it broke")
            assert mirror(job, Split(id="fake_1", status="failed", error=err))
            assert not mirror(job, Split(id="fake_1", status="failed", error=err))
    finally:
        signals.split_failed.disconnect(dispatch_uid="test-forward")
    job.refresh_from_db()
    assert job.status == "failed" and job.error_code == "BOOM"
    assert failures == ["BOOM"]  # sent once


@pytest.mark.django_db(transaction=True)
def test_advance_races_between_connections(media_root: Path, wav_file: Path, settings: Any) -> None:
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "TASK_QUEUE": "nowhere-never-consumed"}
    from unittest import mock

    with mock.patch("django_aistemsplitter.tasks.enqueue"):
        jobs = [services.split(wav_file) for _ in range(8)]
    for job in jobs:
        outcome: dict[str, bool] = {}
        barrier = threading.Barrier(3)

        def move(
            status: str,
            job: SplitJob = job,
            outcome: dict[str, bool] = outcome,
            barrier: threading.Barrier = barrier,
        ) -> None:
            try:
                copy = SplitJob.objects.get(pk=job.pk)
                barrier.wait()
                outcome[status] = copy.advance(status)
            finally:
                connection.close()

        threads = [
            threading.Thread(target=move, args=(s,)) for s in ("succeeded", "failed", "processing")
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        job.refresh_from_db()
        assert outcome["succeeded"] != outcome["failed"]  # exactly one terminal winner
        assert job.status == ("succeeded" if outcome["succeeded"] else "failed")


@pytest.mark.django_db
def test_reconcile_resubmits_stuck_jobs(
    media_root: Path,
    wav_file: Path,
    celery_eager: None,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    with django_capture_on_commit_callbacks():  # the submit is "lost"
        job = services.split(wav_file)
    with django_capture_on_commit_callbacks():
        recent = services.split(wav_file)
    SplitJob.objects.filter(pk=job.pk).update(
        updated_at=timezone.now() - timezone.timedelta(hours=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        counts = reconcile_splits()
    assert counts["submitted"] == 1
    job.refresh_from_db()
    recent.refresh_from_db()
    assert job.status == SplitJob.Status.SUCCEEDED and job.stems.count() == 4
    assert recent.status == SplitJob.Status.PENDING  # not stale yet


def test_sha_helper_sanity(tmp_path: Path) -> None:
    assert hashlib.sha256(b"").hexdigest().startswith("e3b0")


@pytest.mark.django_db
def test_failed_commit_leaves_no_files_and_a_retry_recovers(
    media_root: Path,
    wav_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    from django.core.files.base import ContentFile

    from django_aistemsplitter.backends.local import LocalBackend
    from django_aistemsplitter.ingest import commit_stems, stage_local_files
    from django_aistemsplitter.storage import get_storage

    with django_capture_on_commit_callbacks():
        job = services.split(wav_file)
    job.advance(SplitJob.Status.DOWNLOADING)
    submission = LocalBackend().run(job, lambda fraction: None)
    try:
        staged = stage_local_files(submission.files)
        # A previous run crashed after storing this file, before its commit.
        stray = f"aistemsplitter/stems/{job.pk}/bass.wav"
        get_storage().save(stray, ContentFile(b"partial"))
        real_save = Stem.save
        calls = {"n": 0}

        def crashing_save(self: Stem, *args: Any, **kwargs: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("worker lost mid-commit")
            real_save(self, *args, **kwargs)

        monkeypatch.setattr(Stem, "save", crashing_save)
        with pytest.raises(RuntimeError):
            commit_stems(job, staged)
        job.refresh_from_db()
        assert job.status == SplitJob.Status.DOWNLOADING
        assert job.stems.count() == 0
        # Files written by the failed attempt were removed again.
        assert stem_files(media_root, job) == []
        monkeypatch.setattr(Stem, "save", real_save)
        get_storage().save(stray, ContentFile(b"partial"))
        with django_capture_on_commit_callbacks(execute=True):
            assert commit_stems(job, staged) is True
            assert commit_stems(job, staged) is False  # already succeeded: no-op
    finally:
        submission.cleanup()
    job.refresh_from_db()
    assert job.status == SplitJob.Status.SUCCEEDED
    assert stem_files(media_root, job) == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]
    bass = job.stems.get(name="bass")
    with bass.file.open("rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == bass.sha256  # the stray was replaced
    assert not submission.workdir or not submission.workdir.exists()


@pytest.mark.django_db
def test_staging_stems_keeps_the_job_from_looking_stuck(
    submitted_job: SplitJob, sandbox: SandboxProcess, tmp_path: Path
) -> None:
    """Each staged stem refreshes ``updated_at``, so reconcile does not queue a second ingest."""
    from datetime import timedelta

    from django_aistemsplitter.ingest import stage_remote_stems

    job = submitted_job
    long_ago = timezone.now() - timedelta(hours=2)
    SplitJob.objects.filter(pk=job.pk).update(updated_at=long_ago)
    with AiStemSplitter(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        urls = client.get_split(job.remote_id).stems
    staged = stage_remote_stems(job, urls, tmp_path)
    assert sorted(s.name for s in staged) == ["bass", "drums", "other", "vocals"]
    job.refresh_from_db()
    assert job.updated_at > long_ago + timedelta(hours=1)
    assert Stem.objects.filter(job=job).count() == 0  # staged, not yet stored


# --- Retry-After: honoured, but never beyond RETRY_BACKOFF_MAX ---------------------------

CAP = 300.0
HINTS = {
    "a-day": 86400,
    "1e20": 1e20,
    "http-date-2099": "Thu, 01 Jan 2099 00:00:00 GMT",
    "infinity": float("inf"),
}


def _rate_limited(hint: Any) -> Any:
    from django_aistemsplitter.client import parse_retry_after
    from django_aistemsplitter.exceptions import RateLimitError

    seconds = parse_retry_after(hint) if isinstance(hint, str) else hint
    return RateLimitError("slow down", retry_after=seconds)


@pytest.mark.reliability("retry-after")
@pytest.mark.parametrize("hint", list(HINTS.values()), ids=list(HINTS))
def test_backoff_waits_at_most_the_cap_whatever_retry_after_says(settings: Any, hint: Any) -> None:
    from django_aistemsplitter.tasks import backoff

    settings.AISTEMSPLITTER = {"RETRY_BACKOFF": 2.0, "RETRY_BACKOFF_MAX": CAP}
    exc = _rate_limited(hint)
    for retries in (0, 3, 500):
        delay = backoff(retries, exc)
        assert 0 < delay <= CAP
    if exc.retry_after is not None and exc.retry_after > CAP:
        assert backoff(0, exc) == CAP  # honoured up to the cap


@pytest.mark.reliability("retry-after")
def test_backoff_ignores_hints_that_are_not_numbers(settings: Any) -> None:
    from django_aistemsplitter.exceptions import RateLimitError
    from django_aistemsplitter.tasks import backoff

    settings.AISTEMSPLITTER = {"RETRY_BACKOFF": 2.0, "RETRY_BACKOFF_MAX": CAP}
    for junk in (float("nan"), -5.0, "Thu, 01 Jan 2099 00:00:00 GMT", True):
        delay = backoff(0, RateLimitError("slow down", retry_after=junk))  # type: ignore[arg-type]
        assert 1.0 <= delay <= 2.0  # the plain first backoff: 2 s with 50-100 % jitter


@pytest.mark.reliability("retry-after")
@pytest.mark.redis
@pytest.mark.parametrize("hint", list(HINTS.values()), ids=list(HINTS))
def test_a_task_retry_on_a_huge_retry_after_is_scheduled_within_the_cap(
    settings: Any, hint: Any
) -> None:
    """Through Celery itself (a retry message is really sent): no OverflowError, capped."""
    import redis
    from celery.exceptions import Retry

    from tests.celery_app import app
    from tests.services import REDIS, require

    require(REDIS)
    queue = f"aiss-nowhere-{uuid.uuid4().hex[:8]}"
    settings.AISTEMSPLITTER = {"RETRY_BACKOFF": 2.0, "RETRY_BACKOFF_MAX": CAP, "TASK_QUEUE": queue}
    job_id = str(uuid.uuid4())
    submit_split.push_request(
        id=str(uuid.uuid4()),
        args=[job_id],
        kwargs={},
        retries=0,
        is_eager=False,
        called_directly=False,
        delivery_info={"routing_key": queue, "exchange": ""},
    )
    try:
        with pytest.raises(Retry) as raised:
            submit_split.retry(exc=_rate_limited(hint))
    finally:
        submit_split.pop_request()
        redis.Redis.from_url(app.conf.broker_url).delete(
            queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"
        )
    assert 0 < float(raised.value.when) <= CAP
