"""The ingest's fast paths keep its guarantees (issue 11).

* A downloaded stem is moved into a ``FileSystemStorage`` (same inode, nothing
  left in the staging directory), not copied; an engine's output is copied.
* Four quick downloads write at most one heartbeat: none right after the run's
  start, one when the last beat is old.
* Into S3 (a moto server) a stem costs one PutObject and no HeadObject; a
  leftover at a stem's key (a run that died after storing) is still replaced in
  place, and with ``file_overwrite`` off it is still found and deleted.
* The waveform is not drawn inside the ingest: each committed stem queues the
  ``draw_waveform`` task, which draws and caches the picture.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_aistemsplitter import contract, jobs, tasks, waveform
from django_aistemsplitter.ingest import (
    StagedStem,
    commit_stems,
    stage_local_files,
    stage_remote_stems,
)
from django_aistemsplitter.models import SplitJob, SplitStatus, Stem
from django_aistemsplitter.storage import ConfiguredStorage, get_storage, stem_upload_to
from tests.conftest import make_wav
from tests.django.s3 import S3Server

pytestmark = [pytest.mark.django_db]

STEMS = list(contract.FOUR_STEMS)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stem_server(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server (the standard library's) serving four stems; its base URL."""
    root = tmp_path / "served"
    root.mkdir()
    for name in STEMS:
        make_wav(root / f"{name}.wav", 0.5)
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def http_stems(settings: Any) -> None:
    settings.AISTEMSPLITTER = {
        **settings.AISTEMSPLITTER,
        "ALLOWED_DOWNLOAD_HOSTS": ["127.0.0.1"],
        "ALLOW_HTTP_DOWNLOADS": True,
    }


def downloading_job(**fields: Any) -> SplitJob:
    values: dict[str, Any] = {
        "stem_model": "htdemucs_ft",
        "backend": "hosted",
        "remote_id": "split_speed_paths",
        "status": SplitStatus.DOWNLOADING,
        "source_url": "https://example.com/song.mp3",
        "progress": 1.0,
        **fields,
    }
    return SplitJob.objects.create(**values)


def downloaded(job: SplitJob, base_url: str, workdir: Path) -> list[StagedStem]:
    workdir.mkdir(parents=True, exist_ok=True)
    return stage_remote_stems(job, {n: f"{base_url}/{n}.wav" for n in STEMS}, workdir)


def heartbeat_updates(queries: CaptureQueriesContext) -> int:
    return sum(
        1
        for q in queries.captured_queries
        if q["sql"].startswith("UPDATE") and '"heartbeat_at"' in q["sql"]
    )


# --- FileSystemStorage: moved, not copied -----------------------------------------------


def test_a_downloaded_stem_is_moved_into_file_storage(
    media_root: Path, stem_server: str, http_stems: None, tmp_path: Path
) -> None:
    job = downloading_job()
    staged = downloaded(job, stem_server, tmp_path / "staging")
    assert all(item.movable for item in staged)
    inodes = {item.name: item.path.stat().st_ino for item in staged}

    assert commit_stems(job, staged)

    job.refresh_from_db()
    assert job.status == SplitStatus.SUCCEEDED
    for stem in job.stems.all():
        stored = Path(stem.file.path)
        assert stored.stat().st_ino == inodes[stem.name], f"{stem.name} was copied"
        assert stored.stat().st_size == stem.size
    assert not any(item.path.exists() for item in staged)
    assert list((tmp_path / "staging").iterdir()) == []


def test_an_engine_output_is_copied_not_moved(media_root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "engine-output"
    folder.mkdir()
    staged = stage_local_files({n: make_wav(folder / f"{n}.wav", 0.5) for n in STEMS})
    assert not any(item.movable for item in staged)
    job = downloading_job()

    assert commit_stems(job, staged)

    assert all(item.path.exists() for item in staged)
    for stem in job.stems.all():
        assert Path(stem.file.path).stat().st_ino != staged[0].path.stat().st_ino
    assert job.stems.count() == 4


def test_a_leftover_file_is_still_replaced_in_file_storage(
    media_root: Path, stem_server: str, http_stems: None, tmp_path: Path
) -> None:
    job = downloading_job()
    target = stem_upload_to(Stem(job_id=job.pk, name="vocals"), "vocals.wav")
    leftover = media_root / target
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"left by a run that died before its commit")

    assert commit_stems(job, downloaded(job, stem_server, tmp_path / "staging"))

    vocals = job.stems.get(name="vocals")
    assert vocals.file.name == target
    assert leftover.stat().st_size == vocals.size
    assert sorted(p.name for p in leftover.parent.iterdir()) == sorted(f"{n}.wav" for n in STEMS)


# --- heartbeats -------------------------------------------------------------------------


def test_quick_downloads_right_after_the_run_started_write_no_heartbeat(
    stem_server: str, http_stems: None, tmp_path: Path
) -> None:
    job = downloading_job(heartbeat_at=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        staged = downloaded(job, stem_server, tmp_path / "staging")
    assert len(staged) == 4
    assert heartbeat_updates(queries) == 0


def test_an_old_heartbeat_is_renewed_once_per_ingest(
    stem_server: str, http_stems: None, tmp_path: Path
) -> None:
    old = timezone.now() - timedelta(seconds=jobs.heartbeat_interval())
    job = downloading_job(heartbeat_at=old)
    with CaptureQueriesContext(connection) as queries:
        staged = downloaded(job, stem_server, tmp_path / "staging")
    assert len(staged) == 4
    assert heartbeat_updates(queries) == 1
    job.refresh_from_db()
    assert job.heartbeat_at is not None and job.heartbeat_at > old


def test_a_job_that_never_beat_beats_once(
    stem_server: str, http_stems: None, tmp_path: Path
) -> None:
    job = downloading_job()
    with CaptureQueriesContext(connection) as queries:
        downloaded(job, stem_server, tmp_path / "staging")
    assert heartbeat_updates(queries) == 1
    job.refresh_from_db()
    assert job.heartbeat_at is not None


# --- S3: no HEAD per stem -----------------------------------------------------------------


@pytest.fixture
def s3_calls(s3_server: S3Server, settings: Any, request: pytest.FixtureRequest) -> list[str]:
    """The default storage on a fresh prefix of moto's bucket; every S3 operation it calls."""
    options = getattr(request, "param", {})
    settings.STORAGES = s3_server.storages(location=f"speed-{time.monotonic_ns()}", **options)
    calls: list[str] = []
    storage = get_storage()
    storage.connection.meta.client.meta.events.register(  # type: ignore[attr-defined]
        "before-call.s3", lambda model, **kwargs: calls.append(model.name)
    )
    return calls


def test_s3_stems_are_stored_without_a_head_request(
    s3_calls: list[str], stem_server: str, http_stems: None, tmp_path: Path
) -> None:
    job = downloading_job()
    staged = downloaded(job, stem_server, tmp_path / "staging")

    assert commit_stems(job, staged)

    assert "HeadObject" not in s3_calls
    assert s3_calls.count("PutObject") == 4
    assert job.stems.count() == 4


def test_an_s3_leftover_is_overwritten_in_place(
    s3_server: S3Server, s3_calls: list[str], stem_server: str, http_stems: None, tmp_path: Path
) -> None:
    job = downloading_job()
    storage = get_storage()
    target = stem_upload_to(Stem(job_id=job.pk, name="vocals"), "vocals.wav")
    storage.save(target, ContentFile(b"left by a run that died before its commit"))
    s3_calls.clear()

    assert commit_stems(job, downloaded(job, stem_server, tmp_path / "staging"))

    assert "HeadObject" not in s3_calls
    vocals = job.stems.get(name="vocals")
    assert vocals.file.name == target
    assert storage.size(target) == vocals.size


@pytest.mark.parametrize("s3_calls", [{"file_overwrite": False}], indirect=True)
def test_without_file_overwrite_an_s3_leftover_is_found_and_deleted(
    s3_calls: list[str], stem_server: str, http_stems: None, tmp_path: Path
) -> None:
    job = downloading_job()
    storage = get_storage()
    target = stem_upload_to(Stem(job_id=job.pk, name="vocals"), "vocals.wav")
    storage.save(target, ContentFile(b"left by a run that died before its commit"))

    assert commit_stems(job, downloaded(job, stem_server, tmp_path / "staging"))

    vocals = job.stems.get(name="vocals")
    assert vocals.file.name == target
    assert storage.size(target) == vocals.size
    assert "DeleteObject" in s3_calls


# --- waveforms: a task of their own ---------------------------------------------------------


def test_the_ingest_queues_waveforms_instead_of_drawing_them(
    media_root: Path,
    stem_server: str,
    http_stems: None,
    tmp_path: Path,
    clear_cache: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    job = downloading_job()
    staged = downloaded(job, stem_server, tmp_path / "staging")
    with (
        mock.patch.object(tasks.draw_waveform, "apply_async") as send,
        mock.patch.object(ConfiguredStorage, "open", side_effect=AssertionError("read back")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert commit_stems(job, staged)

    stems = {stem.pk: stem for stem in job.stems.all()}
    queued = [call.kwargs["args"] for call in send.call_args_list]
    assert sorted(queued) == sorted((pk,) for pk in stems)
    for stem in stems.values():
        assert waveform.cache.get(waveform.stem_waveform(stem).cache_key) is None

    for (stem_id,) in queued:
        assert tasks.draw_waveform(stem_id) is True
    for stem in stems.values():
        assert "<polygon" in waveform.cache.get(waveform.stem_waveform(stem).cache_key)


def test_the_waveform_task_never_fails(media_root: Path, clear_cache: None) -> None:
    assert tasks.draw_waveform(10**12) is False  # gone
    job = downloading_job()
    stem = Stem.objects.create(job=job, name="vocals", sha256="0" * 64)
    stem.file.save("vocals.wav", ContentFile(b"RIFF but not audio"), save=True)
    with mock.patch.object(waveform, "_render", side_effect=RuntimeError("storage broke")):
        assert tasks.draw_waveform(stem.pk) is False


def test_a_broker_that_fails_does_not_break_the_ingest(
    media_root: Path,
    stem_server: str,
    http_stems: None,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    job = downloading_job()
    staged = downloaded(job, stem_server, tmp_path / "staging")
    with (
        mock.patch.object(tasks.draw_waveform, "apply_async", side_effect=OSError("no broker")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert commit_stems(job, staged)
    job.refresh_from_db()
    assert job.status == SplitStatus.SUCCEEDED
    assert job.stems.count() == 4
