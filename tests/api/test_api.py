"""The REST API: endpoints, owner isolation, throttling, query counts, schema, no leaks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from django_aistemsplitter.models import SplitJob
from tests.api.helpers import SECRET_API_KEY, SECRET_WEBHOOK, files_under, make_job, wav_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.urls")]

SPLITS = "/api/splits/"


@pytest.fixture
def alice() -> Any:
    return get_user_model().objects.create_user("alice", password="pw-alice")


@pytest.fixture
def bob() -> Any:
    return get_user_model().objects.create_user("bob", password="pw-bob")


@pytest.fixture
def staff() -> Any:
    """Staff with the view permission on split jobs (as the admin would need)."""
    user = get_user_model().objects.create_user("staff", password="pw-staff", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_splitjob"))
    return user


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def api(alice: Any) -> APIClient:
    return client_for(alice)


def ids(response: Any) -> list[str]:
    return [item["id"] for item in response.json()["results"]]


# --- authentication and isolation -------------------------------------------------


def test_anonymous_is_refused(media_root: Path, alice: Any) -> None:
    make_job(alice)
    response = APIClient().get(SPLITS)
    assert response.status_code in (401, 403)
    assert "results" not in response.json()


def test_users_see_only_their_jobs_viewers_see_all(
    alice: Any, bob: Any, staff: Any, media_root: Path
) -> None:
    mine = make_job(alice, filename="mine.wav")
    theirs = make_job(bob, filename="theirs.wav")
    assert ids(client_for(alice).get(SPLITS)) == [str(mine.pk)]
    assert ids(client_for(bob).get(SPLITS)) == [str(theirs.pk)]
    assert set(ids(client_for(staff).get(SPLITS))) == {str(mine.pk), str(theirs.pk)}
    for path in ("", "retry/", "cancel/", "stems/vocals/"):
        method = "get" if path in ("", "stems/vocals/") else "post"
        response = getattr(client_for(alice), method)(f"{SPLITS}{theirs.pk}/{path}")
        assert response.status_code == 404, path
    assert client_for(staff).get(f"{SPLITS}{theirs.pk}/").status_code == 200
    theirs.refresh_from_db()
    assert theirs.status == SplitJob.Status.SUCCEEDED, "alice's cancel did nothing"


# --- list -------------------------------------------------------------------------


def test_list_is_paginated_newest_first_and_filtered(
    api: APIClient, alice: Any, media_root: Path
) -> None:
    first = make_job(alice, filename="1.wav", stems=())
    second = make_job(alice, filename="2.wav", status=SplitJob.Status.FAILED, stems=())
    third = make_job(alice, filename="3.wav", stem_model="htdemucs_6s", stems=())
    body = api.get(SPLITS).json()
    assert body["count"] == 3
    assert [r["id"] for r in body["results"]] == [str(third.pk), str(second.pk), str(first.pk)]
    page = api.get(SPLITS, {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"]
    assert ids(api.get(SPLITS, {"status": "failed"})) == [str(second.pk)]
    assert ids(api.get(SPLITS, {"model": "htdemucs_6s"})) == [str(third.pk)]
    assert ids(api.get(SPLITS, {"status": "succeeded", "model": "htdemucs"})) == [str(first.pk)]


@pytest.mark.parametrize("page_size", [1, 20])
def test_list_query_count_is_constant(
    api: APIClient, alice: Any, media_root: Path, django_assert_num_queries: Any, page_size: int
) -> None:
    for index in range(20):
        make_job(alice, filename=f"{index}.wav", stems=("vocals", "drums"), with_audio=False)
    # the user's permissions (own + groups, once per request), count, page of jobs
    # (owner joined), one prefetch of all their stems
    with django_assert_num_queries(5):
        response = api.get(SPLITS, {"page_size": page_size})
    results = response.json()["results"]
    assert len(results) == page_size
    assert all(len(r["stems"]) == 2 for r in results)


# --- detail -----------------------------------------------------------------------


def test_detail_has_stems_with_urls_not_paths(api: APIClient, alice: Any, media_root: Path) -> None:
    job = make_job(alice, remote_id="")
    response = api.get(f"{SPLITS}{job.pk}/")
    assert response.status_code == 200
    data = response.json()
    assert data["id"] == str(job.pk)
    assert data["status"] == "succeeded" and data["is_terminal"] is True
    assert data["filename"] == "song.wav"
    assert data["url"] == f"http://testserver{SPLITS}{job.pk}/"
    stems = {s["name"]: s for s in data["stems"]}
    assert set(stems) == {"vocals", "drums", "bass", "other"}
    vocals = job.stems.get(name="vocals")
    assert stems["vocals"] == {
        "name": "vocals",
        "url": f"http://testserver{SPLITS}{job.pk}/stems/vocals/",
        "format": "wav",
        "size": vocals.size,
        "duration_seconds": 0.5,
        "sha256": vocals.sha256,
        "sample_rate": 8000,
        "channels": 2,
    }
    text = response.content.decode()
    assert job.idempotency_key not in text
    assert "idempotency" not in text
    assert job.audio.name not in text and vocals.file.name not in text
    assert "aistemsplitter/stems" not in text and "aistemsplitter/audio" not in text


def test_bad_ids_are_404(api: APIClient) -> None:
    assert api.get(f"{SPLITS}00000000-0000-0000-0000-000000000000/").status_code == 404
    assert api.get(f"{SPLITS}not-a-uuid/").status_code == 404


# --- stems download ------------------------------------------------------------------


def test_stem_download_streams_the_file(api: APIClient, alice: Any, media_root: Path) -> None:
    job = make_job(alice)
    stem = job.stems.get(name="bass")
    response = api.get(f"{SPLITS}{job.pk}/stems/bass/")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "audio/wav"
    assert response["Content-Disposition"].startswith('attachment; filename="bass.wav"')
    with stem.file.open("rb") as handle:
        assert b"".join(response.streaming_content) == handle.read()


@pytest.mark.parametrize("name", ["piano", "..", "%2e%2e", "Vocals", "vocals.wav", "a%2Fb"])
def test_unknown_or_unsafe_stem_is_404(
    api: APIClient, alice: Any, media_root: Path, name: str
) -> None:
    job = make_job(alice)
    assert api.get(f"{SPLITS}{job.pk}/stems/{name}/").status_code == 404


# --- create -----------------------------------------------------------------------


def test_create_from_upload(
    api: APIClient, alice: Any, media_root: Path, django_capture_on_commit_callbacks: Any
) -> None:
    upload = SimpleUploadedFile("take1.wav", wav_bytes(seconds=1.0), "audio/wav")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post(
            SPLITS,
            {
                "audio": upload,
                "stem_model": "htdemucs_6s",
                "output_format": "flac",
                "metadata": json.dumps({"album": "demo"}),
            },
            format="multipart",
        )
    assert response.status_code == 201, response.content
    assert len(callbacks) == 1, "the submit task is enqueued on commit"
    data = response.json()
    job = SplitJob.objects.get(pk=data["id"])
    assert job.owner == alice
    assert (job.stem_model, job.output_format) == ("htdemucs_6s", "flac")
    assert job.metadata == {"album": "demo"}
    assert data["filename"] == "take1.wav"
    assert data["status"] == "pending"
    assert job.duration_seconds == pytest.approx(1.0)


def test_create_defaults_to_the_backend_default_model(api: APIClient, media_root: Path) -> None:
    response = api.post(
        SPLITS, {"audio": SimpleUploadedFile("a.wav", wav_bytes(), "audio/wav")}, format="multipart"
    )
    assert response.status_code == 201, response.content
    from django_aistemsplitter import services

    assert response.json()["stem_model"] == services.default_model()


def test_create_runs_to_success_in_eager_mode(
    api: APIClient, media_root: Path, celery_eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            SPLITS,
            {
                "audio": SimpleUploadedFile("a.wav", wav_bytes(), "audio/wav"),
                "stem_model": "htdemucs",
            },
            format="multipart",
        )
    assert response.status_code == 201
    detail = api.get(f"{SPLITS}{response.json()['id']}/").json()
    assert detail["status"] == "succeeded"
    assert sorted(s["name"] for s in detail["stems"]) == ["bass", "drums", "other", "vocals"]
    download = api.get(detail["stems"][0]["url"])
    assert download.status_code == 200


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        (
            {"audio": ("notes.txt", b"plain text, no audio here" * 10)},
            "audio",
            "not audio that can be decoded",
        ),
        ({"audio": ("empty.wav", b"")}, "audio", "The file is empty."),
        ({"audio": ("ok.wav", None), "stem_model": "nope"}, "stem_model", "Unknown model 'nope'"),
        (
            {"audio": ("ok.wav", None), "output_format": "aiff"},
            "output_format",
            "not a valid choice",
        ),
        ({}, "non_field_errors", "Upload an audio file or give its URL."),
    ],
    ids=["not-audio", "empty", "unknown-model", "bad-format", "nothing"],
)
def test_create_validation_errors_create_nothing(
    api: APIClient, media_root: Path, payload: dict[str, Any], field: str, message: str
) -> None:
    data: dict[str, Any] = {k: v for k, v in payload.items() if k != "audio"}
    if "audio" in payload:
        name, content = payload["audio"]
        data["audio"] = SimpleUploadedFile(name, wav_bytes() if content is None else content)
    response = api.post(SPLITS, data, format="multipart")
    assert response.status_code == 400
    errors = response.json()
    assert field in errors, errors
    assert any(message in m for m in errors[field]), errors
    assert SplitJob.objects.count() == 0
    assert files_under(media_root) == []


def test_create_refuses_oversize(api: APIClient, media_root: Path, settings: Any) -> None:
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "MAX_UPLOAD_BYTES": 100}
    response = api.post(
        SPLITS, {"audio": SimpleUploadedFile("a.wav", wav_bytes())}, format="multipart"
    )
    assert response.status_code == 400
    assert "largest accepted upload is 100" in response.json()["audio"][0]
    assert SplitJob.objects.count() == 0


def test_create_from_url_needs_a_remote_backend(api: APIClient) -> None:
    response = api.post(SPLITS, {"source_url": "https://example.com/a.mp3"}, format="json")
    assert response.status_code == 400
    assert "upload the file" in response.json()["non_field_errors"][0]
    assert SplitJob.objects.count() == 0


def test_create_from_url_on_the_hosted_backend(
    api: APIClient, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.AISTEMSPLITTER = {"BACKEND": "hosted", "API_KEY": SECRET_API_KEY}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post(
            SPLITS,
            {"source_url": "https://93.184.215.14/music/song.mp3", "stem_model": "htdemucs_ft"},
            format="json",
        )
    assert response.status_code == 201, response.content
    assert len(callbacks) == 1
    data = response.json()
    assert data["source_url"] == "https://93.184.215.14/music/song.mp3"
    assert data["backend"] == "hosted"
    assert SECRET_API_KEY not in response.content.decode()


def test_create_is_throttled(
    api: APIClient, media_root: Path, settings: Any, clear_cache: None
) -> None:
    settings.REST_FRAMEWORK = {"DEFAULT_THROTTLE_RATES": {"aistemsplitter_create": "2/minute"}}

    def post() -> Any:
        return api.post(
            SPLITS, {"audio": SimpleUploadedFile("a.wav", wav_bytes())}, format="multipart"
        )

    assert post().status_code == 201
    assert post().status_code == 201
    third = post()
    assert third.status_code == 429
    assert "detail" in third.json()
    assert SplitJob.objects.count() == 2
    assert api.get(SPLITS).status_code == 200, "reads are not throttled by the create scope"


def test_default_create_rate(settings: Any) -> None:
    from django_aistemsplitter.api.throttling import DEFAULT_CREATE_RATE, SplitCreateRateThrottle

    settings.REST_FRAMEWORK = {}
    assert SplitCreateRateThrottle().get_rate() == DEFAULT_CREATE_RATE
    settings.REST_FRAMEWORK = {"DEFAULT_THROTTLE_RATES": {"aistemsplitter_create": "5/day"}}
    assert SplitCreateRateThrottle().get_rate() == "5/day"


# --- retry and cancel ------------------------------------------------------------------


def test_retry(
    api: APIClient, alice: Any, media_root: Path, django_capture_on_commit_callbacks: Any
) -> None:
    failed = make_job(alice, status=SplitJob.Status.FAILED, stems=(), error_message="boom")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post(f"{SPLITS}{failed.pk}/retry/")
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert response.json()["error_message"] == ""
    assert len(callbacks) == 1
    ok = make_job(alice)
    conflict = api.post(f"{SPLITS}{ok.pk}/retry/")
    assert conflict.status_code == 409
    assert "failed or cancelled" in conflict.json()["detail"]


def test_cancel(api: APIClient, alice: Any, media_root: Path) -> None:
    running = make_job(alice, status=SplitJob.Status.PROCESSING, stems=())
    response = api.post(f"{SPLITS}{running.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    again = api.post(f"{SPLITS}{running.pk}/cancel/")
    assert again.status_code == 409
    assert "already cancelled" in again.json()["detail"]


# --- no secrets ----------------------------------------------------------------------


def test_responses_never_contain_secrets(
    api: APIClient, alice: Any, media_root: Path, settings: Any
) -> None:
    settings.AISTEMSPLITTER = {
        **settings.AISTEMSPLITTER,
        "API_KEY": SECRET_API_KEY,
        "WEBHOOK_SECRET": SECRET_WEBHOOK,
    }
    job = make_job(alice)
    bodies = [
        api.get(SPLITS).content,
        api.get(f"{SPLITS}{job.pk}/").content,
        api.post(f"{SPLITS}{job.pk}/cancel/").content,
        api.get("/api/schema/", {"format": "json"}).content,
    ]
    for body in bodies:
        text = body.decode()
        assert SECRET_API_KEY not in text and SECRET_WEBHOOK not in text
        assert job.idempotency_key not in text


# --- schema -----------------------------------------------------------------------


def test_openapi_schema_is_valid_and_documents_errors(api: APIClient) -> None:
    from openapi_spec_validator import validate

    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate(schema)
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert set(paths) >= {
        "/api/splits/",
        "/api/splits/{id}/",
        "/api/splits/{id}/retry/",
        "/api/splits/{id}/cancel/",
        "/api/splits/{id}/stems/{name}/",
    }
    create = paths["/api/splits/"]["post"]
    assert {"201", "400", "429"} <= set(create["responses"])
    assert "multipart/form-data" in create["requestBody"]["content"]
    assert "application/json" in create["requestBody"]["content"]
    detail = paths["/api/splits/{id}/"]["get"]["responses"]["404"]
    assert detail["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert "409" in paths["/api/splits/{id}/retry/"]["post"]["responses"]
    components = schema["components"]["schemas"]
    assert "Error" in components and "SplitValidationError" in components
    job_fields = set(components["SplitJob"]["properties"])
    assert not job_fields & {"idempotency_key", "remote_input", "audio", "owner"}
    assert {"status", "progress", "stems"} <= job_fields
    list_params = {p["name"] for p in paths["/api/splits/"]["get"]["parameters"]}
    assert {"status", "model", "page", "page_size"} <= list_params


def test_schema_yaml_by_default_without_database_queries(django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        response = APIClient().get("/api/schema/")
    assert response.status_code == 200
    assert response.content.startswith(b"openapi: 3")
    assert b"django-aistemsplitter API" in response.content
