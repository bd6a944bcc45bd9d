"""Stems and source audio on S3 (moto's server): signed redirects, ranged proxying, memory.

With a storage that signs URLs the admin and the API answer ``302`` to a
short-lived signed URL (after their permission checks) and the bytes never pass
through Django; with ``SERVE_VIA_REDIRECT`` False they are streamed through
ranged reads, never downloaded whole. A 300 MB object shows both at scale.
"""

from __future__ import annotations

import hashlib
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from rest_framework.test import APIClient
from storages.backends.s3 import S3File, S3Storage

from django_aistemsplitter import waveform
from django_aistemsplitter.models import SplitJob, Stem
from django_aistemsplitter.services import split
from django_aistemsplitter.storage import ConfiguredStorage
from tests.api.helpers import make_job, wav_bytes
from tests.django.s3 import BUCKET, S3Server
from tests.testapp.models import Track

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.urls")]

BIG_BYTES = 300 * 1024**2
MiB = 1024**2


@pytest.fixture
def s3_storage(s3_server: S3Server, settings: Any) -> str:
    """The default storage on a fresh prefix of moto's bucket; returns that prefix."""
    location = f"serve-{time.monotonic_ns()}"
    settings.STORAGES = s3_server.storages(location=location)
    return location


@pytest.fixture
def api(admin_user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


def admin_stem(job: SplitJob, name: str = "vocals") -> str:
    return reverse("admin:aistemsplitter_splitjob_stem", args=[job.pk, name])


def stored(s3_server: S3Server, location: str, name: str) -> bytes:
    return bytes(
        s3_server.client().get_object(Bucket=BUCKET, Key=f"{location}/{name}")["Body"].read()
    )


def test_admin_and_api_redirect_to_a_signed_url_that_serves_the_stem(
    s3_server: S3Server, s3_storage: str, admin_user: Any, admin_client: Any, api: APIClient
) -> None:
    job = make_job(admin_user)
    stem = job.stems.get(name="vocals")
    data = stored(s3_server, s3_storage, stem.file.name)
    answers = {
        "admin-play": (admin_client.get(admin_stem(job)), "inline"),
        "admin-download": (admin_client.get(admin_stem(job), {"download": "1"}), "attachment"),
        "api": (api.get(f"/api/splits/{job.pk}/stems/vocals/"), "attachment"),
    }
    for label, (response, disposition) in answers.items():
        assert response.status_code == 302, label
        assert response["Cache-Control"] == "private, no-store"
        location = response["Location"]
        query = parse_qs(urlsplit(location).query)
        assert location.startswith(f"{s3_server.endpoint_url}/{BUCKET}/{s3_storage}/")
        assert "Signature" in query or "X-Amz-Signature" in query  # v2 or v4, as configured
        if "Expires" in query:  # v2: an absolute time
            assert abs(int(query["Expires"][0]) - time.time() - 3600) < 60
        else:
            assert int(query["X-Amz-Expires"][0]) == 3600
        target = httpx.get(location)
        assert target.status_code == 200, target.text
        assert target.content == data
        assert target.headers["content-type"] == "audio/wav"
        assert target.headers["content-disposition"] == f'{disposition}; filename="vocals.wav"'
        # The browser seeks on the signed URL itself.
        part = httpx.get(location, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.content == data[100:200]
    source = admin_client.get(reverse("admin:aistemsplitter_splitjob_source", args=[job.pk]))
    assert source.status_code == 302
    assert httpx.get(source["Location"]).content == stored(s3_server, s3_storage, job.audio.name)


def test_a_redirect_reads_nothing_from_storage(
    s3_storage: str, admin_user: Any, admin_client: Any, api: APIClient, settings: Any
) -> None:
    job = make_job(admin_user)
    with (
        mock.patch.object(S3Storage, "open", side_effect=AssertionError("opened")) as opened,
        mock.patch.object(S3Storage, "exists", side_effect=AssertionError("checked")),
    ):
        assert admin_client.get(admin_stem(job)).status_code == 302
        assert api.get(f"/api/splits/{job.pk}/stems/drums/").status_code == 302
    opened.assert_not_called()


def test_without_redirects_s3_bytes_stream_through_ranges(
    s3_server: S3Server, s3_storage: str, admin_user: Any, admin_client: Any, settings: Any
) -> None:
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "SERVE_VIA_REDIRECT": False}
    job = make_job(admin_user)
    stem = job.stems.get(name="vocals")
    data = stored(s3_server, s3_storage, stem.file.name)
    # django-storages' S3 file downloads the whole object on its first read: never used.
    with mock.patch.object(S3File, "_get_file", side_effect=AssertionError("whole download")):
        whole = admin_client.get(admin_stem(job))
        assert whole.status_code == 200
        assert b"".join(whole.streaming_content) == data
        assert whole["ETag"] == f'"{stem.sha256}"'
        assert whole["Last-Modified"]
        part = admin_client.get(admin_stem(job), HTTP_RANGE="bytes=1000-1099")
        assert part.status_code == 206
        assert part["Content-Range"] == f"bytes 1000-1099/{len(data)}"
        assert b"".join(part.streaming_content) == data[1000:1100]
        again = admin_client.get(admin_stem(job), HTTP_IF_NONE_MATCH=whole["ETag"])
        assert again.status_code == 304


def test_a_stem_gone_from_the_bucket_is_404_when_proxied(
    s3_server: S3Server, s3_storage: str, admin_user: Any, admin_client: Any, settings: Any
) -> None:
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "SERVE_VIA_REDIRECT": False}
    job = make_job(admin_user)
    stem = job.stems.get(name="vocals")
    s3_server.client().delete_object(Bucket=BUCKET, Key=f"{s3_storage}/{stem.file.name}")
    assert admin_client.get(admin_stem(job)).status_code == 404


def test_an_s3_without_signed_urls_is_proxied(
    s3_server: S3Server, admin_user: Any, admin_client: Any, settings: Any
) -> None:
    # A public bucket (querystring_auth off) gives unsigned URLs: no redirect by default.
    location = f"public-{time.monotonic_ns()}"
    settings.STORAGES = s3_server.storages(location=location, querystring_auth=False)
    job = make_job(admin_user)
    response = admin_client.get(admin_stem(job))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == stored(
        s3_server, location, job.stems.get(name="vocals").file.name
    )


def test_waveforms_read_s3_stems_through_ranges(
    s3_storage: str, admin_user: Any, admin_client: Any, clear_cache: None
) -> None:
    job = make_job(admin_user)
    url = reverse("admin:aistemsplitter_splitjob_stem_waveform", args=[job.pk, "vocals"])
    with mock.patch.object(S3File, "_get_file", side_effect=AssertionError("whole download")):
        response = admin_client.get(url)
    assert "<polygon" in response.content.decode()
    assert waveform.cache.get(waveform.stem_waveform(job.stems.get(name="vocals")).cache_key)


# --- 300 MB ---------------------------------------------------------------------------


def _pattern_chunks(total: int, chunk: int = 8 * MiB) -> Iterator[bytes]:
    block = bytes(range(256)) * (chunk // 256)
    sent = 0
    while sent < total:
        size = min(chunk, total - sent)
        yield block[:size]
        sent += size


@pytest.fixture(scope="module")
def big_object(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A 300 MB object in moto's bucket, uploaded once: (key under "big/", sha256)."""
    path = tmp_path_factory.mktemp("big") / "big.wav"
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        for chunk in _pattern_chunks(BIG_BYTES):
            digest.update(chunk)
            handle.write(chunk)
    name = "aistemsplitter/stems/big/vocals.wav"
    s3_server.client().upload_file(str(path), BUCKET, f"big/{name}")
    path.unlink()
    return name, digest.hexdigest()


@pytest.fixture
def big_job(
    big_object: tuple[str, str], s3_server: S3Server, settings: Any, admin_user: Any
) -> SplitJob:
    settings.STORAGES = s3_server.storages(location="big")
    name, sha256 = big_object
    job = make_job(admin_user, stems=(), with_audio=False)
    stem = Stem(job=job, name="vocals", format="wav", size=BIG_BYTES, sha256=sha256)
    stem.file.name = name
    stem.save()
    return job


def peak_python_memory(action: Callable[[], Any]) -> int:
    """Peak bytes Python allocated while ``action`` ran (tracemalloc)."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_a_300_mb_stem_on_s3_costs_django_no_memory(
    big_job: SplitJob, admin_client: Any, api: APIClient
) -> None:
    admin_client.get(admin_stem(big_job))  # warm up: boto3 loads its service models once
    with mock.patch.object(ConfiguredStorage, "open", side_effect=AssertionError("opened")):
        answers: list[Any] = []
        peak = peak_python_memory(
            lambda: answers.extend(
                [
                    admin_client.get(admin_stem(big_job)),
                    api.get(f"/api/splits/{big_job.pk}/stems/vocals/"),
                ]
            )
        )
    assert [a.status_code for a in answers] == [302, 302]
    assert peak < 8 * MiB, f"{peak / MiB:.1f} MiB for two redirects"
    # The signed URL serves the object, and a player can seek to 80 % of it.
    at = int(BIG_BYTES * 0.8)
    part = httpx.get(answers[1]["Location"], headers={"Range": f"bytes={at}-{at + 1023}"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes {at}-{at + 1023}/{BIG_BYTES}"
    assert part.headers["content-disposition"] == 'attachment; filename="vocals.wav"'
    assert part.content == bytes((at + i) % 256 for i in range(1024))


@pytest.mark.slow
def test_a_300_mb_stem_proxied_from_s3_streams_at_constant_memory(
    big_job: SplitJob, admin_client: Any, settings: Any
) -> None:
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "SERVE_VIA_REDIRECT": False}
    digest = hashlib.sha256()
    received = 0

    def download() -> None:
        nonlocal received
        response = admin_client.get(admin_stem(big_job), {"download": "1"})
        assert response.status_code == 200
        assert response["Content-Length"] == str(BIG_BYTES)
        for chunk in response.streaming_content:
            digest.update(chunk)
            received += len(chunk)

    peak = peak_python_memory(download)
    assert received == BIG_BYTES
    assert digest.hexdigest() == big_job.stems.get().sha256
    assert peak < 32 * MiB, f"{peak / MiB:.1f} MiB to stream 300 MiB"
    # A seek near the end reads only from there.
    at = BIG_BYTES - 4096
    part = admin_client.get(admin_stem(big_job), HTTP_RANGE=f"bytes={at}-")
    assert part.status_code == 206
    assert b"".join(part.streaming_content) == bytes((at + i) % 256 for i in range(4096))


def test_splitting_a_users_file_on_s3_reads_ranges_not_the_whole_object(
    s3_storage: str, s3_server: S3Server
) -> None:
    """split(instance) on S3 probes and copies through ranged reads.

    django-storages' S3 file downloads the whole object into memory on its
    first read; the source of an auto-split (a user's FileField) must never be
    read that way, or a 100 MB track costs the saving process 100 MB.
    """
    audio = wav_bytes(seconds=3.0)
    track = Track(title="t")
    track.audio.save("take.wav", ContentFile(audio), save=False)
    track.save()

    def whole_object(self: S3File) -> Any:
        raise AssertionError("the whole object was read into memory")

    with mock.patch.object(S3File, "file", new=property(whole_object)):
        job = split(track, backend="local")
    assert job.audio.name != track.audio.name  # the job keeps a copy of its own
    copied = stored(s3_server, s3_storage, job.audio.name)
    assert hashlib.sha256(copied).digest() == hashlib.sha256(audio).digest()
    assert job.duration_seconds == pytest.approx(3.0)
