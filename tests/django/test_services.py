"""services.split/retry/cancel and the model checks, run eagerly (no worker)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from django_aistemsplitter import services, workdirs
from django_aistemsplitter.exceptions import (
    AudioDecodeError,
    InvalidTransitionError,
    UnsupportedModelError,
)
from django_aistemsplitter.models import SplitJob, Stem
from tests.conftest import make_wav

pytestmark = pytest.mark.django_db


def stored_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_corrupt_upload_creates_nothing(media_root: Path) -> None:
    upload = SimpleUploadedFile("song.wav", b"RIFF....not audio at all", "audio/wav")
    with pytest.raises(AudioDecodeError):
        services.split(upload)
    assert SplitJob.objects.count() == 0
    assert stored_files(media_root) == []


def test_oversize_upload_is_refused(settings: Any, media_root: Path, wav_file: Path) -> None:
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "MAX_UPLOAD_BYTES": 1000}
    with pytest.raises(services.FileTooLargeError, match="MAX_UPLOAD_BYTES"):
        services.split(wav_file)
    assert SplitJob.objects.count() == 0
    assert stored_files(media_root) == []


def test_unknown_model_is_refused_before_storing(media_root: Path, wav_file: Path) -> None:
    with pytest.raises(UnsupportedModelError, match="no_such_model"):
        services.split(wav_file, stem_model="no_such_model")
    assert SplitJob.objects.count() == 0
    assert stored_files(media_root) == []


def test_local_backend_is_strict_about_models(
    settings: Any, media_root: Path, wav_file: Path
) -> None:
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "ENGINE": "spectral"}
    assert services.default_model() == "spectral"  # DEFAULT_MODEL None -> the engine's
    with pytest.raises(UnsupportedModelError, match="htdemucs_ft"):
        services.split(wav_file, stem_model="htdemucs_ft")  # a hosted model it cannot run
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "DEFAULT_MODEL": "htdemucs_6s"}
    with pytest.raises(UnsupportedModelError):
        services.split(wav_file)
    assert SplitJob.objects.count() == 0
    assert stored_files(media_root) == []


def test_url_input_needs_a_remote_backend(media_root: Path) -> None:
    with pytest.raises(ValueError, match="remote backend"):
        services.split(url="https://example.com/song.wav")
    assert SplitJob.objects.count() == 0


def test_split_stores_audio_and_enqueues_on_commit(
    media_root: Path, wav_file: Path, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        job = services.split(wav_file, metadata={"k": "v"})
    assert len(callbacks) == 1  # submit_split, only once the row is committed
    job.refresh_from_db()
    assert job.status == SplitJob.Status.PENDING
    assert job.backend == "local"
    assert job.stem_model == services.default_model()
    assert job.duration_seconds == pytest.approx(2.0)
    assert job.estimated_cost is None  # an in-process split costs engine time, not money
    assert job.original_filename == "song.wav"
    with job.audio.open("rb") as fh:
        assert hashlib.sha256(fh.read()).digest() == hashlib.sha256(wav_file.read_bytes()).digest()


def test_defaults_work_together(settings: Any) -> None:
    # DEFAULT_MODEL None -> each backend's own default, which it serves.
    for backend in ("local", "hosted"):
        assert services.default_model(backend) in services.available_models(backend)
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "ENGINE": "spectral"}
    assert services.available_models("local")[0] == services.default_model("local")
    assert "htdemucs_6s" in services.available_models("hosted")


def test_local_split_runs_eagerly_end_to_end(
    media_root: Path,
    wav_file: Path,
    celery_eager: None,
    django_capture_on_commit_callbacks: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where work dirs are made
    received: dict[str, Any] = {"saved": [], "submitted": 0}

    from django_aistemsplitter import signals

    def on_success(sender: Any, job: SplitJob, stems: list[Stem], **kwargs: Any) -> None:
        received["stems"] = sorted(s.name for s in stems)

    def on_saved(sender: Any, job: SplitJob, stem: Stem, **kwargs: Any) -> None:
        received["saved"].append(stem.name)

    def on_submitted(sender: Any, job: SplitJob, **kwargs: Any) -> None:
        received["submitted"] += 1

    signals.split_succeeded.connect(on_success, dispatch_uid="test-local-eager")
    signals.stem_saved.connect(on_saved, dispatch_uid="test-local-eager")
    signals.split_submitted.connect(on_submitted, dispatch_uid="test-local-eager")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            job = services.split(SimpleUploadedFile("mix.wav", wav_file.read_bytes()))
    finally:
        signals.split_succeeded.disconnect(dispatch_uid="test-local-eager")
        signals.stem_saved.disconnect(dispatch_uid="test-local-eager")
        signals.split_submitted.disconnect(dispatch_uid="test-local-eager")
    assert received["submitted"] == 1
    assert sorted(received["saved"]) == ["bass", "drums", "other", "vocals"]
    job.refresh_from_db()
    assert job.status == SplitJob.Status.SUCCEEDED, job.error_message
    names = sorted(job.stems.values_list("name", flat=True))
    assert names == ["bass", "drums", "other", "vocals"]
    assert received["stems"] == names
    for stem in job.stems.all():
        with stem.file.open("rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == stem.sha256
        assert stem.sample_rate == 44100 and stem.channels == 2
        assert stem.duration_seconds == pytest.approx(2.0)
    # The engine's work dir is gone once the stems are stored.
    assert list(tmp_path.glob(f"{workdirs.STAGING_PREFIX}*")) == []


def test_retry_and_cancel(media_root: Path, wav_file: Path) -> None:
    job = services.split(wav_file)
    with pytest.raises(InvalidTransitionError):
        services.retry(job)  # pending is not retryable
    assert services.cancel(job) is True
    assert services.cancel(job) is False
    old_key = job.idempotency_key
    services.retry(job)
    job.refresh_from_db()
    assert job.status == SplitJob.Status.PENDING
    assert job.idempotency_key != old_key


def test_split_from_instance_links_the_job(media_root: Path, tmp_path: Path) -> None:
    from django.core.files import File

    from tests.testapp.models import Track

    track = Track(title="t")
    with open(make_wav(tmp_path / "a.wav"), "rb") as fh:
        track.audio.save("a.wav", File(fh), save=True)
    job = services.split(track)
    assert job.source == track
    assert job.source_field == "audio"
    assert list(SplitJob.objects.for_object(track)) == [job]


def test_retry_keeps_the_input_of_a_direct_upload_to_the_service_only() -> None:
    """A job whose audio went straight to the service has no other source: a retry
    must send that upload again. Any other input is rebuilt on the next submit."""
    uploaded = {"type": "uploaded_file", "uploadId": "upl_direct"}
    direct = SplitJob.objects.create(
        stem_model="htdemucs", backend="hosted", status="failed", remote_input=uploaded
    )
    stored = SplitJob.objects.create(
        stem_model="htdemucs",
        backend="hosted",
        status="failed",
        audio="aistemsplitter/audio/x/take.wav",
        remote_input={"type": "uploaded_file", "uploadId": "upl_old"},
    )
    by_url = SplitJob.objects.create(
        stem_model="htdemucs",
        backend="hosted",
        status="failed",
        source_url="https://example.com/a.wav",
        remote_input={"type": "direct_url", "url": "https://example.com/a.wav"},
    )
    for job in (direct, stored, by_url):
        services.retry(job)
        assert job.status == SplitJob.Status.PENDING
    assert direct.remote_input == uploaded
    assert stored.remote_input == {} and by_url.remote_input == {}
