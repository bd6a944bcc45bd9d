"""Auto-split registrations: a changed audio file splits, an unchanged save does not."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.management import call_command

from django_aistemsplitter import register
from django_aistemsplitter.celery_schedule import RECONCILE_TASK, beat_schedule
from django_aistemsplitter.exceptions import ConfigurationError
from django_aistemsplitter.models import SplitJob
from django_aistemsplitter.registry import (
    register_from_settings,
    registration_for,
    split_jobs_for,
    unregister,
)
from tests.conftest import make_wav
from tests.testapp.models import Track

pytestmark = pytest.mark.django_db


@pytest.fixture
def registered() -> Iterator[None]:
    register(Track, field="audio", stem_model="htdemucs_6s")
    yield
    unregister(Track)


def save_audio(track: Track, path: Path, capture: Callable[..., Any]) -> list[Any]:
    with capture() as callbacks, open(path, "rb") as fh:
        track.audio.save(path.name, File(fh), save=True)
    return list(callbacks)


def test_changed_audio_splits_unchanged_save_does_not(
    registered: None,
    media_root: Path,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    track = Track.objects.create(title="no audio yet")
    assert split_jobs_for(track).count() == 0
    callbacks = save_audio(
        track, make_wav(tmp_path / "one.wav"), django_capture_on_commit_callbacks
    )
    assert len(callbacks) == 1  # the split starts once the save commits
    with django_capture_on_commit_callbacks() as submits:
        callbacks[0]()
    assert len(submits) == 1  # the submit, on commit
    jobs = list(track.split_jobs)  # type: ignore[attr-defined]
    assert len(jobs) == 1
    assert jobs[0].stem_model == "htdemucs_6s"
    assert jobs[0].source == track and jobs[0].source_field == "audio"

    with django_capture_on_commit_callbacks() as callbacks:
        track.title = "renamed"
        track.save()
        Track.objects.get(pk=track.pk).save()  # a fresh instance, same file
    assert len(callbacks) == 0
    assert split_jobs_for(track).count() == 1

    [start] = save_audio(
        track, make_wav(tmp_path / "two.wav", seconds=1.0), django_capture_on_commit_callbacks
    )
    with django_capture_on_commit_callbacks():
        start()
    assert split_jobs_for(track).count() == 2


def test_corrupt_audio_does_not_break_the_save(
    registered: None, media_root: Path, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    track = Track(title="broken")
    with django_capture_on_commit_callbacks():
        track.audio.save("broken.wav", ContentFile(b"not audio"), save=True)
    assert Track.objects.filter(pk=track.pk).exists()
    assert SplitJob.objects.count() == 0


def test_unregistered_model_does_nothing(
    media_root: Path, tmp_path: Path, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    track = Track.objects.create(title="plain")
    save_audio(track, make_wav(tmp_path / "x.wav"), django_capture_on_commit_callbacks)
    assert SplitJob.objects.count() == 0
    assert not hasattr(Track, "split_jobs")


def test_register_from_settings(settings: Any) -> None:
    settings.AISTEMSPLITTER = {
        **settings.AISTEMSPLITTER,
        "AUTO_SPLIT": [{"model": "testapp.Track", "field": "audio", "output_format": "flac"}],
    }
    try:
        register_from_settings()
        assert registration_for(Track) == {
            "field": "audio",
            "stem_model": None,
            "output_format": "flac",
            "owner_field": None,
        }
    finally:
        unregister(Track)
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "AUTO_SPLIT": [{"model": "nope.Nope"}]}
    with pytest.raises(ConfigurationError, match=r"nope\.Nope"):
        register_from_settings()
    with pytest.raises(ConfigurationError, match="no field"):
        register(Track, field="missing")


def test_reconcile_command_and_beat_schedule(
    settings: Any,
    media_root: Path,
    wav_file: Path,
    celery_eager: None,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    from io import StringIO

    from django_aistemsplitter import services

    with django_capture_on_commit_callbacks():
        job = services.split(wav_file)
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("reconcile_splits", older_than=0, stdout=out)
    assert "1 stuck job(s)" in out.getvalue()
    job.refresh_from_db()
    assert job.status == SplitJob.Status.SUCCEEDED
    settings.AISTEMSPLITTER = {
        **settings.AISTEMSPLITTER,
        "RECONCILE_INTERVAL": 42.0,
        "TASK_QUEUE": "q",
    }
    entry = beat_schedule()["aistemsplitter-reconcile"]
    assert entry == {
        "task": RECONCILE_TASK,
        "schedule": 42.0,
        "options": {"expires": 42.0, "queue": "q"},
    }
    from django_aistemsplitter.tasks import reconcile_splits

    assert reconcile_splits.name == RECONCILE_TASK
