"""Serving stems and source audio (admin and API alike): ranges, validators, browser caching.

File-system storage here, where the bytes always go through Django; the S3
redirect is in ``tests/django/test_s3_serving.py``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.cache import CacheKeyWarning
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.http import http_date
from rest_framework.test import APIClient

from django_aistemsplitter import services, waveform
from django_aistemsplitter.models import SplitJob
from django_aistemsplitter.storage import ConfiguredStorage
from tests.api.helpers import make_job

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.urls")]

Getter = Callable[..., Any]


@pytest.fixture
def job(admin_user: Any, media_root: Path) -> SplitJob:
    return make_job(admin_user)


@pytest.fixture
def api(admin_user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


def admin_stem(job: SplitJob, name: str = "vocals") -> str:
    return reverse("admin:aistemsplitter_splitjob_stem", args=[job.pk, name])


def admin_source(job: SplitJob) -> str:
    return reverse("admin:aistemsplitter_splitjob_source", args=[job.pk])


def api_stem(job: SplitJob, name: str = "vocals") -> str:
    return f"/api/splits/{job.pk}/stems/{name}/"


def stored_bytes(job: SplitJob, which: str) -> bytes:
    field = job.audio if which == "source" else job.stems.get(name="vocals").file
    with open(field.path, "rb") as handle:
        return handle.read()


ENDPOINTS = ["admin-stem", "admin-source", "api-stem"]


def request_for(
    endpoint: str, job: SplitJob, admin_client: Any, api: APIClient
) -> tuple[Getter, str, bytes]:
    """(get function, URL, the stored bytes it serves) of one serving endpoint."""
    if endpoint == "admin-stem":
        return admin_client.get, admin_stem(job), stored_bytes(job, "stem")
    if endpoint == "admin-source":
        return admin_client.get, admin_source(job), stored_bytes(job, "source")
    return api.get, api_stem(job), stored_bytes(job, "stem")


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_range_is_answered_206_with_exactly_those_bytes(
    endpoint: str, job: SplitJob, admin_client: Any, api: APIClient
) -> None:
    get, url, data = request_for(endpoint, job, admin_client, api)
    size = len(data)
    cases = {
        "bytes=100-199": (100, 199),
        f"bytes={size - 5}-": (size - 5, size - 1),
        "bytes=-10": (size - 10, size - 1),
        f"bytes=0-{size * 2}": (0, size - 1),  # clipped to the end
    }
    for header, (first, last) in cases.items():
        response = get(url, HTTP_RANGE=header)
        assert response.status_code == 206, header
        assert response["Content-Range"] == f"bytes {first}-{last}/{size}"
        assert response["Content-Length"] == str(last - first + 1)
        assert response["Accept-Ranges"] == "bytes"
        assert response["Content-Type"] == "audio/wav"
        assert body(response) == data[first : last + 1]
    whole = get(url)
    assert whole.status_code == 200
    assert whole.streaming, "streamed from the file, never read whole"
    assert whole["Accept-Ranges"] == "bytes"
    assert whole["Content-Length"] == str(size)
    assert body(whole) == data


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_range_past_the_end_is_416(
    endpoint: str, job: SplitJob, admin_client: Any, api: APIClient
) -> None:
    get, url, data = request_for(endpoint, job, admin_client, api)
    for header in (f"bytes={len(data)}-", f"bytes={len(data) + 10}-{len(data) + 20}", "bytes=-0"):
        response = get(url, HTTP_RANGE=header)
        assert response.status_code == 416, header
        assert response["Content-Range"] == f"bytes */{len(data)}"


@pytest.mark.parametrize(
    "header", ["bytes=0-1,5-6", "items=0-10", "bytes=20-10", "bytes=x-y", "bytes="]
)
def test_ranges_it_does_not_serve_get_the_whole_file(
    header: str, job: SplitJob, admin_client: Any
) -> None:
    response = admin_client.get(admin_stem(job), HTTP_RANGE=header)
    assert response.status_code == 200
    assert body(response) == stored_bytes(job, "stem")


def test_if_range_keeps_the_range_only_for_the_current_copy(
    job: SplitJob, admin_client: Any
) -> None:
    first = admin_client.get(admin_stem(job))
    etag, modified = first["ETag"], first["Last-Modified"]
    for current in (etag, modified):
        assert (
            admin_client.get(
                admin_stem(job), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=current
            ).status_code
            == 206
        )
    for stale in ('"0000"', f"W/{etag}", http_date(0)):
        response = admin_client.get(admin_stem(job), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=stale)
        assert response.status_code == 200, stale
        assert body(response) == stored_bytes(job, "stem")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_validators_and_revalidation(
    endpoint: str, job: SplitJob, admin_client: Any, api: APIClient
) -> None:
    get, url, _data = request_for(endpoint, job, admin_client, api)
    first = get(url)
    etag = first["ETag"]
    if endpoint != "admin-source":
        assert etag == f'"{job.stems.get(name="vocals").sha256}"'
    assert etag.startswith('"') and etag.endswith('"')
    assert get(url)["ETag"] == etag, "stable across requests"
    assert first["Last-Modified"]
    # The admin's wrapper must not turn this into no-store: browsers keep and revalidate.
    assert first["Cache-Control"] == "private, no-cache"
    assert "Expires" not in first

    for headers in (
        {"HTTP_IF_NONE_MATCH": etag},
        {"HTTP_IF_NONE_MATCH": f'"other", {etag}'},
        {"HTTP_IF_MODIFIED_SINCE": first["Last-Modified"]},
    ):
        again = get(url, **headers)
        assert again.status_code == 304, headers
        assert again["ETag"] == etag
        assert again["Cache-Control"] == "private, no-cache"
        assert body(again) == b""
    changed = get(url, HTTP_IF_NONE_MATCH='"something-else"')
    assert changed.status_code == 200


def test_new_bytes_get_a_new_etag(job: SplitJob, admin_client: Any) -> None:
    old = admin_client.get(admin_stem(job))["ETag"]
    job.stems.filter(name="vocals").update(sha256="f" * 64)  # as a re-download leaves it
    response = admin_client.get(admin_stem(job), HTTP_IF_NONE_MATCH=old)
    assert response.status_code == 200
    assert response["ETag"] == f'"{"f" * 64}"'


def test_a_304_reads_nothing(job: SplitJob, admin_client: Any) -> None:
    etag = admin_client.get(admin_stem(job))["ETag"]
    with mock.patch("django_aistemsplitter.serving.FileResponse") as streamed:
        assert admin_client.get(admin_stem(job), HTTP_IF_NONE_MATCH=etag).status_code == 304
    streamed.assert_not_called()


def test_the_file_system_is_never_redirected_to(job: SplitJob, admin_client: Any) -> None:
    # The default (None) redirects only to signed URLs; the file system has none.
    response = admin_client.get(admin_stem(job))
    assert response.status_code == 200


def test_serve_via_redirect_true_uses_the_storage_url(
    job: SplitJob, admin_client: Any, settings: Any
) -> None:
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "SERVE_VIA_REDIRECT": True}
    response = admin_client.get(admin_stem(job))
    assert response.status_code == 302
    assert response["Location"] == job.stems.get(name="vocals").file.url
    assert "no-store" in response["Cache-Control"]


def test_permission_checks_come_first(job: SplitJob, client: Any, settings: Any) -> None:
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "SERVE_VIA_REDIRECT": True}
    anonymous = APIClient().get(api_stem(job))
    assert anonymous.status_code in (401, 403)
    assert "Location" not in anonymous
    assert client.get(admin_stem(job)).status_code == 302  # to the admin's login page
    assert "/login/" in client.get(admin_stem(job))["Location"]


# --- waveforms ---------------------------------------------------------------------


def stem_wave(job: SplitJob, name: str = "vocals") -> str:
    return reverse("admin:aistemsplitter_splitjob_stem_waveform", args=[job.pk, name])


def source_wave(job: SplitJob) -> str:
    return reverse("admin:aistemsplitter_splitjob_source_waveform", args=[job.pk])


def test_waveforms_are_cacheable_by_the_browser(
    job: SplitJob, admin_client: Any, clear_cache: None
) -> None:
    for url in (stem_wave(job), source_wave(job)):
        first = admin_client.get(url)
        assert first.status_code == 200
        assert first["Cache-Control"] == "private, max-age=3600", "not no-store"
        assert "Expires" not in first
        etag = first["ETag"]
        with (
            mock.patch.object(waveform, "_render") as render,
            mock.patch.object(waveform.cache, "get") as cache_get,
        ):
            again = admin_client.get(url, HTTP_IF_NONE_MATCH=etag)
        assert again.status_code == 304
        assert again["ETag"] == etag
        assert again["Cache-Control"] == "private, max-age=3600"
        render.assert_not_called()
        cache_get.assert_not_called()
    assert admin_client.get(stem_wave(job))["ETag"] != admin_client.get(source_wave(job))["ETag"]


def test_waveform_cache_keys_stay_short_whatever_the_name(
    admin_user: Any, media_root: Path, admin_client: Any, clear_cache: None
) -> None:
    long_name = "a-very-long-file-name-" * 9 + ".wav"  # ~200 characters, stored as is
    job = make_job(admin_user, filename=long_name)
    assert len(job.audio.name) > 200
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheKeyWarning)
        response = admin_client.get(source_wave(job))
        assert "<polygon" in response.content.decode()
    key = waveform.source_waveform(job).cache_key
    assert len(key) < 100
    assert long_name not in key and str(job.pk) not in key


def test_stem_waveforms_are_drawn_when_the_stem_is_stored(
    admin_client: Any,
    media_root: Path,
    wav_file: Path,
    celery_eager: None,
    django_capture_on_commit_callbacks: Any,
    clear_cache: None,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        job = services.split(SimpleUploadedFile("mix.wav", wav_file.read_bytes()))
    job.refresh_from_db()
    assert job.status == SplitJob.Status.SUCCEEDED, job.error_message
    stems = list(job.stems.all())
    assert len(stems) == 4
    for stem in stems:
        assert waveform.cache.get(waveform.stem_waveform(stem).cache_key) is not None
    # The page view then reads no stem from storage.
    with mock.patch.object(ConfiguredStorage, "open", side_effect=AssertionError("read")):
        for stem in stems:
            response = admin_client.get(stem_wave(job, stem.name))
            assert response.status_code == 200
            assert "<polygon" in response.content.decode()


def test_a_waveform_that_fails_to_draw_does_not_break_the_ingest(
    media_root: Path,
    wav_file: Path,
    celery_eager: None,
    django_capture_on_commit_callbacks: Any,
    clear_cache: None,
) -> None:
    with (
        mock.patch.object(waveform, "_render", side_effect=RuntimeError("boom")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        job = services.split(SimpleUploadedFile("mix.wav", wav_file.read_bytes()))
    job.refresh_from_db()
    assert job.status == SplitJob.Status.SUCCEEDED, job.error_message
    assert job.stems.count() == 4
