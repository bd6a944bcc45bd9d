"""Auto-split and the user's transaction: split after commit, never break the save.

Also the explicit path for what sends no signal: ``bulk_create`` and
``queryset.update()`` split nothing until ``services.split_queryset`` is called.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.db import transaction

from django_aistemsplitter import register, services
from django_aistemsplitter.models import SplitJob
from django_aistemsplitter.registry import split_jobs_for, unregister
from tests.conftest import make_wav
from tests.django.s3 import S3Server
from tests.testapp.models import Track

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]


@pytest.fixture
def registered() -> Iterator[None]:
    register(Track, field="audio", stem_model="htdemucs_6s")
    yield
    unregister(Track)


def copies_under(media_root: Path) -> list[Path]:
    """Audio the splitter stored (the user's own files live under tracks/)."""
    return [p for p in (media_root / "aistemsplitter").rglob("*") if p.is_file()]


def wav(tmp_path: Path, name: str = "song.wav") -> ContentFile[bytes]:
    return ContentFile(make_wav(tmp_path / name, seconds=0.5).read_bytes(), name=name)


def test_the_split_starts_only_once_the_save_commits(
    registered: None, media_root: Path, tmp_path: Path, django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        track = Track(title="one")
        track.audio.save("one.wav", wav(tmp_path), save=True)
        # Inside the user's transaction nothing is copied and no job exists yet.
        assert SplitJob.objects.count() == 0
        assert copies_under(media_root) == []
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks() as submits:
        callbacks[0]()  # the commit
    job = split_jobs_for(track).get()
    assert (job.stem_model, job.source_field) == ("htdemucs_6s", "audio")
    assert len(copies_under(media_root)) == 1
    assert len(submits) == 1  # and the job's submission waits for its own commit


def test_a_rolled_back_save_leaves_no_job_and_no_copy(
    registered: None, media_root: Path, tmp_path: Path, django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                track = Track(title="rolled back")
                track.audio.save("gone.wav", wav(tmp_path), save=True)
                raise RuntimeError("the view failed after saving")
        except RuntimeError:
            pass
    assert callbacks == []
    assert SplitJob.objects.count() == 0
    assert copies_under(media_root) == []


def test_an_instance_deleted_before_the_commit_is_not_split(
    registered: None, media_root: Path, tmp_path: Path, django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        track = Track(title="short-lived")
        track.audio.save("brief.wav", wav(tmp_path), save=True)
        track.delete()
    assert SplitJob.objects.count() == 0
    assert copies_under(media_root) == []


def test_a_file_replaced_before_the_commit_is_split_once(
    registered: None, media_root: Path, tmp_path: Path, django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        track = Track(title="twice")
        track.audio.save("first.wav", wav(tmp_path, "first.wav"), save=True)
        track.audio.save("second.wav", wav(tmp_path, "second.wav"), save=True)
    with django_capture_on_commit_callbacks():
        for callback in callbacks:
            callback()
    assert [j.original_filename for j in split_jobs_for(track)] == ["second.wav"]


def test_a_storage_error_is_logged_not_raised_into_the_save(
    registered: None,
    media_root: Path,
    tmp_path: Path,
    s3_server: S3Server,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    # The user's files on the file system; the splitter's copies in a bucket that is
    # gone: botocore raises its ClientError, which is no OSError.
    broken = s3_server.storages(bucket_name="no-such-bucket")["default"]
    settings.STORAGES = {**settings.STORAGES, "splits": broken}
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "STORAGE": "splits"}
    with (
        caplog.at_level(logging.WARNING, logger="django_aistemsplitter.autosplit"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        track = Track(title="bucket gone")
        track.audio.save("song.wav", wav(tmp_path), save=True)
    assert Track.objects.filter(pk=track.pk).exists()
    assert SplitJob.objects.count() == 0
    [record] = [r for r in caplog.records if "auto-split" in r.getMessage()]
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert "NoSuchBucket" in str(record.exc_info[1])
    assert f"testapp.Track {track.pk}" in record.getMessage()


def test_audio_that_cannot_be_split_is_a_warning(
    registered: None,
    media_root: Path,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="django_aistemsplitter.autosplit"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        track = Track(title="not audio")
        track.audio.save("noise.wav", ContentFile(b"not audio at all"), save=True)
    assert Track.objects.filter(pk=track.pk).exists()
    assert SplitJob.objects.count() == 0
    [record] = [r for r in caplog.records if "auto-split" in r.getMessage()]
    assert record.levelno == logging.WARNING and "skipped" in record.getMessage()


def test_bulk_writes_split_nothing_until_split_queryset(
    registered: None, media_root: Path, tmp_path: Path, django_capture_on_commit_callbacks: Capture
) -> None:
    stored = []
    for name in ("a.wav", "b.wav"):
        holder = Track(title=name)
        holder.audio.save(name, wav(tmp_path, name), save=False)  # stored, no row yet
        stored.append(holder.audio.name)
    with django_capture_on_commit_callbacks(execute=True):
        created = Track.objects.bulk_create(
            [
                Track(title="a", audio=stored[0]),
                Track(title="b", audio=stored[1]),
                Track(title="empty"),
                Track(title="bad", audio="tracks/missing.wav"),
            ]
        )
        Track.objects.filter(title="b").update(title="b2")
    assert SplitJob.objects.count() == 0  # no signal, no split: documented

    with django_capture_on_commit_callbacks() as submits:
        result = services.split_queryset(Track.objects.order_by("pk"))
    assert sorted(j.original_filename for j in result.jobs) == ["a.wav", "b.wav"]
    assert all(j.stem_model == "htdemucs_6s" for j in result.jobs)  # the registration's
    by_title = {t.title: t.pk for t in created}
    assert set(result.skipped) == {by_title["empty"], by_title["bad"]}
    assert "no file" in result.skipped[by_title["empty"]]
    assert len(submits) == 2
    assert SplitJob.objects.count() == 2


def test_deleting_the_instance_stops_its_unfinished_job(
    registered: None,
    media_root: Path,
    tmp_path: Path,
    celery_eager: None,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    with django_capture_on_commit_callbacks() as starts:
        track = Track(title="deleted before its split ran")
        track.audio.save("song.wav", wav(tmp_path), save=True)
    with django_capture_on_commit_callbacks() as submits:
        starts[0]()
    job = split_jobs_for(track).get()
    assert job.status == SplitJob.Status.PENDING
    with django_capture_on_commit_callbacks(execute=True):
        track.delete()
    assert not SplitJob.objects.filter(pk=job.pk).exists()
    for submit in submits:  # the queued submission runs late: it finds no job
        submit()
    assert copies_under(media_root) == []  # no audio copy kept, no stems
