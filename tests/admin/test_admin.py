"""The SplitJob admin: add form validation, change list, change view, extra views, actions."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import soundfile as sf
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import NoReverseMatch, reverse

from django_aistemsplitter.models import SplitJob
from tests.api.helpers import (
    SECRET_API_KEY,
    SECRET_WEBHOOK,
    files_under,
    make_event,
    make_job,
    wav_bytes,
)

pytestmark = pytest.mark.django_db

ADD_URL = "admin:aistemsplitter_splitjob_add"
LIST_URL = "admin:aistemsplitter_splitjob_changelist"


def change_url(job: SplitJob) -> str:
    return reverse("admin:aistemsplitter_splitjob_change", args=[job.pk])


def post_add(client: Any, upload: Any = None, **data: Any) -> Any:
    payload = {"stem_model": "htdemucs", "output_format": "wav", "source_url": "", **data}
    if upload is not None:
        payload["audio"] = upload
    return client.post(reverse(ADD_URL), payload)


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- add form -------------------------------------------------------------------


def test_add_form_offers_the_backend_models_and_formats(admin_client: Any) -> None:
    response = admin_client.get(reverse(ADD_URL))
    assert response.status_code == 200
    html = response.content.decode()
    # tests.settings: local backend, passthrough engine, which serves the hosted names.
    for model in ("htdemucs_ft", "htdemucs", "htdemucs_6s"):
        assert f'value="{model}"' in html
    for fmt in ("wav", "flac", "mp3"):
        assert f'value="{fmt}"' in html
    assert 'name="audio"' in html
    assert 'name="source_url"' not in html, "the local backend takes uploads only"
    assert 'name="_continue"' not in html
    assert "idempotency" not in html.lower()


def test_add_form_offers_a_url_on_a_remote_backend(admin_client: Any, settings: Any) -> None:
    settings.AISTEMSPLITTER = {"BACKEND": "hosted", "API_KEY": SECRET_API_KEY}
    html = admin_client.get(reverse(ADD_URL)).content.decode()
    assert 'name="audio"' in html and 'name="source_url"' in html
    assert '<option value="htdemucs_ft" selected>' in html, "the hosted default model"
    assert SECRET_API_KEY not in html


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "notes.txt",
            b"these are not audio samples, just text\n" * 20,
            "not audio that can be decoded",
        ),
        ("song.wav", b"", "The file is empty."),
        ("broken.wav", b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00\xff" * 64, "or it is corrupt"),
    ],
    ids=["not-audio", "empty", "corrupt"],
)
def test_add_rejects_bad_uploads_and_creates_nothing(
    admin_client: Any, media_root: Path, name: str, content: bytes, message: str
) -> None:
    response = post_add(admin_client, SimpleUploadedFile(name, content, "audio/wav"))
    assert response.status_code == 200, "the form is shown again"
    assert message in response.content.decode()
    assert response.context["adminform"].form.errors
    assert SplitJob.objects.count() == 0
    assert files_under(media_root) == []


def test_add_rejects_oversize_upload(admin_client: Any, media_root: Path, settings: Any) -> None:
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "MAX_UPLOAD_BYTES": 1000}
    response = post_add(admin_client, SimpleUploadedFile("big.wav", wav_bytes(), "audio/wav"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "the largest accepted upload is 1000" in html
    assert SplitJob.objects.count() == 0
    assert files_under(media_root) == []


def test_add_requires_a_file_or_a_url(admin_client: Any) -> None:
    response = post_add(admin_client)
    assert response.status_code == 200
    assert "Upload an audio file or give its URL." in response.content.decode()
    assert SplitJob.objects.count() == 0


def test_add_refuses_a_url_on_the_local_backend(admin_client: Any) -> None:
    response = post_add(admin_client, source_url="https://example.com/song.wav")
    assert response.status_code == 200
    assert "upload the file instead of giving a URL" in response.content.decode()
    assert SplitJob.objects.count() == 0


def test_add_refuses_a_model_the_backend_does_not_serve(
    admin_client: Any, media_root: Path
) -> None:
    upload = SimpleUploadedFile("song.wav", wav_bytes(), "audio/wav")
    response = post_add(admin_client, upload, stem_model="no_such_model")
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert SplitJob.objects.count() == 0


def test_add_starts_the_split(
    admin_client: Any,
    admin_user: Any,
    media_root: Path,
    celery_eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    upload = SimpleUploadedFile("My Song.wav", wav_bytes(seconds=1.0), "audio/wav")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_add(admin_client, upload, stem_model="htdemucs_6s", output_format="flac")
    assert len(callbacks) >= 1, "the submit task is enqueued on commit"
    job = SplitJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == change_url(job)
    assert job.owner == admin_user
    assert job.stem_model == "htdemucs_6s"
    assert job.output_format == "flac"
    assert job.original_filename == "My_Song.wav" or job.original_filename == "My Song.wav"
    job.refresh_from_db()
    assert job.status == SplitJob.Status.SUCCEEDED, job.error_message
    names = sorted(job.stems.values_list("name", flat=True))
    assert names == sorted(["vocals", "drums", "bass", "other", "guitar", "piano"])
    assert any("started" in m for m in messages_of(response))


# --- change list ------------------------------------------------------------------


@pytest.fixture
def jobs(admin_user: Any, media_root: Path) -> dict[str, SplitJob]:
    return {
        "ok": make_job(
            admin_user,
            filename="alpha.wav",
            stem_model="htdemucs",
            remote_id="spl_aaa",
            credits_used=1.5,
        ),
        "failed": make_job(
            admin_user,
            status=SplitJob.Status.FAILED,
            filename="beta.wav",
            stem_model="htdemucs_6s",
            backend="hosted",
            remote_id="spl_bbb",
            stems=(),
            error_message="boom",
        ),
        "running": make_job(
            admin_user,
            status=SplitJob.Status.PROCESSING,
            filename="gamma.wav",
            stems=(),
            progress=0.42,
        ),
    }


def listed(response: Any) -> set[str]:
    return {job.original_filename for job in response.context["cl"].result_list}


def test_changelist_shows_badges_progress_and_columns(admin_client: Any, jobs: Any) -> None:
    response = admin_client.get(reverse(LIST_URL))
    assert response.status_code == 200
    html = response.content.decode()
    assert listed(response) == {"alpha.wav", "beta.wav", "gamma.wav"}
    assert 'class="aiss-badge aiss-status-succeeded"' in html and ">Succeeded<" in html
    assert 'class="aiss-badge aiss-status-failed"' in html and ">Failed<" in html
    assert 'aria-valuenow="42"' in html
    assert "1.5 credits" in html
    assert "aistemsplitter/admin/splitjob.css" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status__exact": "failed"}, {"beta.wav"}),
        ({"status__exact": "processing"}, {"gamma.wav"}),
        ({"model": "htdemucs_6s"}, {"beta.wav"}),
        ({"backend": "hosted"}, {"beta.wav"}),
        ({"backend": "local"}, {"alpha.wav", "gamma.wav"}),
        ({"q": "alpha"}, {"alpha.wav"}),
        ({"q": "spl_bbb"}, {"beta.wav"}),
    ],
)
def test_changelist_filters_and_search(
    admin_client: Any, jobs: Any, query: dict[str, str], expected: set[str]
) -> None:
    response = admin_client.get(reverse(LIST_URL), query)
    assert response.status_code == 200
    assert listed(response) == expected


def test_changelist_date_hierarchy(admin_client: Any, jobs: Any) -> None:
    year = jobs["ok"].created_at.year
    response = admin_client.get(reverse(LIST_URL), {"created_at__year": year})
    assert response.status_code == 200
    assert len(listed(response)) == 3
    response = admin_client.get(reverse(LIST_URL), {"created_at__year": year - 5})
    assert listed(response) == set()


def test_changelist_query_count_does_not_grow_with_rows(
    admin_client: Any, admin_user: Any, media_root: Path, django_assert_max_num_queries: Any
) -> None:
    for index in range(3):
        make_job(admin_user, filename=f"{index}.wav", stems=())
    admin_client.get(reverse(LIST_URL))  # warm the session
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        admin_client.get(reverse(LIST_URL))
    for index in range(10):
        make_job(admin_user, filename=f"more{index}.wav", stems=())
    with django_assert_max_num_queries(len(few)):
        admin_client.get(reverse(LIST_URL))


# --- change view ---------------------------------------------------------------


def test_change_view_plays_source_and_stems_read_only(admin_client: Any, jobs: Any) -> None:
    job = jobs["ok"]
    make_event(job, "evt_visible_1")
    response = admin_client.get(change_url(job))
    assert response.status_code == 200
    html = response.content.decode()
    source = reverse("admin:aistemsplitter_splitjob_source", args=[job.pk])
    assert f'src="{source}"' in html
    for name in ("vocals", "drums", "bass", "other"):
        url = reverse("admin:aistemsplitter_splitjob_stem", args=[job.pk, name])
        wave = reverse("admin:aistemsplitter_splitjob_stem_waveform", args=[job.pk, name])
        player = f'class="aiss-player" data-stem="{name}" src="{url}">'
        assert f'<audio controls preload="metadata" {player}' in html
        assert f'href="{url}?download=1"' in html
        assert f'src="{wave}"' in html
    assert html.count("<audio") == 5
    assert "evt_visible_1" in html, "webhook events inline"
    # Read-only: no editable mirrored field, no stem inputs, no idempotency key.
    for field in ("stem_model", "status", "remote_id", "progress", "stems-0-name"):
        assert f'name="{field}"' not in html
    assert job.idempotency_key not in html
    assert 'data-aiss-terminal="1"' in html
    assert "aistemsplitter/admin/split_status.js" in html


def test_running_job_polls_its_status(admin_client: Any, jobs: Any) -> None:
    job = jobs["running"]
    html = admin_client.get(change_url(job)).content.decode()
    status_url = reverse("admin:aistemsplitter_splitjob_status", args=[job.pk])
    assert f'data-aiss-status-url="{status_url}"' in html
    assert 'data-aiss-terminal="0"' in html
    data = admin_client.get(status_url).json()
    assert data["status"] == "processing"
    assert data["terminal"] is False
    assert data["progress"] == pytest.approx(0.42)
    assert "aiss-status-processing" in data["badge"]
    job.advance(SplitJob.Status.SUCCEEDED, progress=1.0)
    data = admin_client.get(status_url).json()
    assert data["terminal"] is True and data["status"] == "succeeded"


def test_stem_and_source_downloads(admin_client: Any, jobs: Any) -> None:
    job = jobs["ok"]
    stem = job.stems.get(name="drums")
    response = admin_client.get(
        reverse("admin:aistemsplitter_splitjob_stem", args=[job.pk, "drums"])
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    body = b"".join(response.streaming_content)
    with stem.file.open("rb") as handle:
        assert body == handle.read()
    attachment = admin_client.get(
        reverse("admin:aistemsplitter_splitjob_stem", args=[job.pk, "drums"]), {"download": "1"}
    )
    assert attachment["Content-Disposition"].startswith('attachment; filename="drums.wav"')
    source = admin_client.get(reverse("admin:aistemsplitter_splitjob_source", args=[job.pk]))
    assert source.status_code == 200
    data, rate = sf.read(io.BytesIO(b"".join(source.streaming_content)))
    assert rate == 8000 and len(data) == 4000


@pytest.mark.parametrize("name", ["piano", "..", "Vocals", "a.b"])
def test_unknown_or_unsafe_stem_names_are_404(admin_client: Any, jobs: Any, name: str) -> None:
    job = jobs["ok"]
    response = admin_client.get(f"{change_url(job).rsplit('/change/', 1)[0]}/stems/{name}/")
    assert response.status_code == 404


def test_waveform_is_an_svg_cached_per_stem(
    admin_client: Any, jobs: Any, clear_cache: None
) -> None:
    job = jobs["ok"]
    url = reverse("admin:aistemsplitter_splitjob_stem_waveform", args=[job.pk, "vocals"])
    from django_aistemsplitter import waveform

    with mock.patch.object(waveform, "_render", wraps=waveform._render) as render:
        first = admin_client.get(url)
        second = admin_client.get(url)
    assert first.status_code == 200
    assert first["Content-Type"] == "image/svg+xml"
    svg = first.content.decode()
    assert svg.startswith("<svg") and "<polygon" in svg
    assert second.content == first.content
    assert render.call_count == 1, "the second request is served from the cache"
    source = admin_client.get(
        reverse("admin:aistemsplitter_splitjob_source_waveform", args=[job.pk])
    )
    assert "<polygon" in source.content.decode()


def test_other_objects_404(admin_client: Any, media_root: Path) -> None:
    url = reverse(
        "admin:aistemsplitter_splitjob_status", args=["00000000-0000-0000-0000-000000000000"]
    )
    assert admin_client.get(url).status_code == 404


def test_stems_cannot_be_added_or_changed_by_hand() -> None:
    with pytest.raises(NoReverseMatch):
        reverse("admin:aistemsplitter_stem_add")
    from django.contrib import admin

    from django_aistemsplitter.admin.inlines import StemInline
    from django_aistemsplitter.models import Stem

    inline = StemInline(SplitJob, admin.site)
    request = mock.Mock()
    assert not inline.has_add_permission(request, None)
    assert not inline.has_change_permission(request, None)
    assert not inline.has_delete_permission(request, None)
    assert Stem not in admin.site._registry


# --- actions ---------------------------------------------------------------------


def run_action(client: Any, action: str, *jobs: SplitJob) -> Any:
    return client.post(
        reverse(LIST_URL),
        {"action": action, "_selected_action": [str(j.pk) for j in jobs]},
        follow=True,
    )


def test_retry_action(admin_client: Any, jobs: Any) -> None:
    response = run_action(admin_client, "retry_failed", jobs["failed"], jobs["ok"])
    texts = messages_of(response)
    assert "Retried 1 job." in texts
    assert any("alpha.wav" in t and "Succeeded" in t for t in texts), texts
    jobs["failed"].refresh_from_db()
    assert jobs["failed"].status == SplitJob.Status.PENDING
    jobs["ok"].refresh_from_db()
    assert jobs["ok"].status == SplitJob.Status.SUCCEEDED


def test_cancel_action(admin_client: Any, jobs: Any) -> None:
    response = run_action(admin_client, "cancel_jobs", jobs["running"], jobs["ok"])
    texts = messages_of(response)
    assert "Cancelled 1 job." in texts
    assert any("alpha.wav" in t and "already" in t for t in texts), texts
    jobs["running"].refresh_from_db()
    assert jobs["running"].status == SplitJob.Status.CANCELLED


def test_split_again_action(admin_client: Any, admin_user: Any, jobs: Any) -> None:
    before = SplitJob.objects.count()
    response = run_action(admin_client, "split_again", jobs["ok"])
    assert "Started a new split for 1 job." in messages_of(response)
    assert SplitJob.objects.count() == before + 1
    new = SplitJob.objects.exclude(pk__in=[j.pk for j in jobs.values()]).get()
    assert new.metadata["split_again_of"] == str(jobs["ok"].pk)
    assert new.stem_model == jobs["ok"].stem_model
    assert new.owner == admin_user
    assert new.audio and new.audio.name != jobs["ok"].audio.name
    assert new.status == SplitJob.Status.PENDING


def test_redownload_action_explains_local_jobs(admin_client: Any, jobs: Any) -> None:
    response = run_action(admin_client, "redownload_stems", jobs["ok"])
    texts = messages_of(response)
    assert any("cannot be re-downloaded" in t for t in texts), texts


def test_redownload_action_queues_remote_jobs(
    admin_client: Any, admin_user: Any, media_root: Path, settings: Any
) -> None:
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "API_KEY": SECRET_API_KEY}
    job = make_job(admin_user, backend="hosted", remote_id="spl_remote_1")
    with mock.patch("django_aistemsplitter.tasks.enqueue") as enqueue:
        from django.test import TestCase

        with TestCase.captureOnCommitCallbacks(execute=True):
            response = run_action(admin_client, "redownload_stems", job)
    assert "Queued a re-download for 1 job." in messages_of(response)
    assert enqueue.call_count == 1
    assert enqueue.call_args.args[1] == str(job.pk)


# --- secrets ----------------------------------------------------------------------


def test_secrets_never_appear_in_admin_pages(
    admin_client: Any, jobs: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.AISTEMSPLITTER = {
        **settings.AISTEMSPLITTER,
        "API_KEY": SECRET_API_KEY,
        "WEBHOOK_SECRET": [SECRET_WEBHOOK, SECRET_WEBHOOK + "-old"],
    }
    monkeypatch.setenv("AISTEMSPLITTER_API_KEY", SECRET_API_KEY)
    event = make_event(jobs["ok"], "evt_secret_check")
    # What was sent to the service (a presigned URL's signature) is internal too.
    SplitJob.objects.filter(pk=jobs["ok"].pk).update(
        remote_input={"url": "https://bucket.example/a.wav?X-Amz-Signature=SIGNATURE-MARKER"}
    )
    pages = [
        reverse("admin:index"),
        reverse("admin:app_list", args=["aistemsplitter"]),
        reverse(LIST_URL),
        reverse(ADD_URL),
        reverse("admin:aistemsplitter_webhookevent_changelist"),
        reverse("admin:aistemsplitter_webhookevent_change", args=[event.pk]),
    ]
    for job in jobs.values():
        pages.append(change_url(job))
        pages.append(reverse("admin:aistemsplitter_splitjob_status", args=[job.pk]))
        pages.append(reverse("admin:aistemsplitter_splitjob_history", args=[job.pk]))
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert SECRET_API_KEY not in body, url
        assert SECRET_WEBHOOK not in body, url
        assert "SIGNATURE-MARKER" not in body, url
        for job in jobs.values():
            assert job.idempotency_key not in body, url
