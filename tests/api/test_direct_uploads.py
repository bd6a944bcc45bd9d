"""Direct uploads through the REST API (issue 13), on plain file storage ("app" destination).

``POST /api/splits/uploads/`` issues a ticket, the file goes to the ticket's URL
(the app's own streaming view here), and ``POST /api/splits/`` with ``upload``
makes the job from it, without a copy. Tickets are single use, owner-bound and
expire; every refusal is a 400 keyed by the field at fault and leaves nothing.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from django_aistemsplitter.models import SplitJob, UploadTicket
from tests.api.helpers import files_under, wav_bytes
from tests.django.direct_uploads import TICKET_KEYS
from tests.sandbox_process import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.urls")]

SPLITS = "/api/splits/"
UPLOADS = "/api/splits/uploads/"


@pytest.fixture(autouse=True)
def app_destination(settings: Any, media_root: Path) -> Path:
    """Plain file storage and the app's own upload view, whatever else is configured."""
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "DIRECT_UPLOAD": "app"}
    return media_root


@pytest.fixture
def alice() -> Any:
    return get_user_model().objects.create_user("alice", password="pw-alice")


@pytest.fixture
def bob() -> Any:
    return get_user_model().objects.create_user("bob", password="pw-bob")


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def api(alice: Any) -> APIClient:
    return client_for(alice)


def ask_ticket(api: APIClient, data: bytes, filename: str = "take.wav") -> dict[str, Any]:
    response = api.post(
        UPLOADS,
        {"filename": filename, "size": len(data), "content_type": "audio/wav"},
        format="json",
    )
    assert response.status_code == 201, response.content
    return dict(response.json())


def send(ticket: dict[str, Any], data: bytes) -> Any:
    """Send the file as the ticket says, with no credentials but the signed URL."""
    assert ticket["method"] == "PUT"
    return APIClient().generic(
        "PUT",
        ticket["url"],
        data,
        content_type=ticket["headers"].get("Content-Type", "application/octet-stream"),
    )


def upload(api: APIClient, data: bytes, filename: str = "take.wav") -> dict[str, Any]:
    ticket = ask_ticket(api, data, filename)
    response = send(ticket, data)
    assert response.status_code == 201, response.content
    assert response.json() == {"received": len(data), "complete": True}
    return ticket


def split_from(api: APIClient, ticket_id: str, **extra: Any) -> Any:
    return api.post(SPLITS, {"upload": ticket_id, **extra}, format="json")


# --- the flow -----------------------------------------------------------------------


def test_ticket_upload_split_runs_to_success_on_the_uploaded_file(
    api: APIClient,
    media_root: Path,
    celery_eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    data = wav_bytes(seconds=1.0)
    ticket = ask_ticket(api, data, "My Take.wav")
    assert ticket["destination"] == "app"
    assert ticket["method"] == "PUT"
    assert ticket["url"].startswith("http://testserver/aistemsplitter/uploads/")
    assert ticket["max_bytes"] == len(data)
    assert set(ticket) == TICKET_KEYS
    assert send(ticket, data).status_code == 201
    stored = UploadTicket.objects.get(pk=ticket["id"]).storage_name
    assert (media_root / stored).read_bytes() == data

    with django_capture_on_commit_callbacks(execute=True):
        response = split_from(api, ticket["id"], stem_model="htdemucs", metadata={"a": 1})
    assert response.status_code == 201, response.content
    assert response["Location"] == response.json()["url"]
    job = SplitJob.objects.get(pk=response.json()["id"])
    assert job.audio.name == stored, "the job keeps the uploaded file: no copy"
    assert job.original_filename == "My Take.wav"
    assert job.metadata["a"] == 1
    detail = api.get(f"{SPLITS}{job.pk}/").json()
    assert detail["status"] == "succeeded"
    assert sorted(s["name"] for s in detail["stems"]) == ["bass", "drums", "other", "vocals"]
    audio_files = [p for p in files_under(media_root) if "stems" not in p.parts]
    assert audio_files == [media_root / stored], "one copy of the audio, none staged"
    used = UploadTicket.objects.get(pk=ticket["id"])
    assert used.used_at is not None and used.job_id == job.pk


# --- asking for a ticket -------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"filename": "a.wav", "size": 0}, "size", "positive whole number"),
        ({"filename": "a.wav", "size": -5}, "size", "positive whole number"),
        ({"filename": "a.wav", "size": 10**12}, "size", "largest accepted upload"),
        ({"filename": "a.wav", "size": "many"}, "size", "valid integer"),
        ({"filename": "a.wav"}, "size", "required"),
        ({"filename": "", "size": 10}, "filename", "blank"),
        ({"filename": "dir/", "size": 10}, "filename", "Give the file's name."),
        ({"size": 10}, "filename", "required"),
    ],
    ids=["zero", "negative", "too-large", "not-a-number", "no-size", "blank", "no-name", "none"],
)
def test_bad_ticket_requests_are_400_by_field(
    api: APIClient, payload: dict[str, Any], field: str, message: str
) -> None:
    response = api.post(UPLOADS, payload, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()
    assert list(errors) == [field], errors
    assert message in errors[field][0]
    assert UploadTicket.objects.count() == 0


def test_too_many_open_tickets(api: APIClient, settings: Any) -> None:
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "MAX_OPEN_UPLOAD_TICKETS": 2}
    ask_ticket(api, b"x" * 10)
    ask_ticket(api, b"x" * 10)
    response = api.post(UPLOADS, {"filename": "c.wav", "size": 10}, format="json")
    assert response.status_code == 400
    assert "2 unused upload tickets" in response.json()["non_field_errors"][0]
    assert UploadTicket.objects.count() == 2


def test_multipart_bodies_are_not_taken_by_the_ticket_endpoint(api: APIClient) -> None:
    response = api.post(
        UPLOADS,
        {"filename": "a.wav", "size": 10, "file": SimpleUploadedFile("a.wav", b"x" * 10)},
        format="multipart",
    )
    assert response.status_code == 415
    assert UploadTicket.objects.count() == 0


def test_the_root_links_the_ticket_endpoint() -> None:
    assert APIClient().get("/api/").json()["uploads"] == f"http://testserver{UPLOADS}"


def test_anonymous_gets_no_ticket() -> None:
    response = APIClient().post(UPLOADS, {"filename": "a.wav", "size": 10}, format="json")
    assert response.status_code in (401, 403)
    assert UploadTicket.objects.count() == 0


def test_ticket_requests_are_throttled_with_creates(
    api: APIClient, settings: Any, clear_cache: None
) -> None:
    settings.REST_FRAMEWORK = {"DEFAULT_THROTTLE_RATES": {"aistemsplitter_create": "3/minute"}}
    data = wav_bytes()
    ticket = upload(api, data)
    assert split_from(api, ticket["id"]).status_code == 201
    assert api.post(UPLOADS, {"filename": "b.wav", "size": 10}, format="json").status_code == 201
    third = api.post(UPLOADS, {"filename": "c.wav", "size": 10}, format="json")
    assert third.status_code == 429, "tickets and splits share the create scope"
    assert "detail" in third.json()
    assert UploadTicket.objects.count() == 2
    assert api.get(SPLITS).status_code == 200, "reads are not throttled"


# --- redeeming a ticket -------------------------------------------------------------


def test_a_ticket_is_used_once(api: APIClient, media_root: Path) -> None:
    ticket = upload(api, wav_bytes())
    assert split_from(api, ticket["id"]).status_code == 201
    again = split_from(api, ticket["id"])
    assert again.status_code == 400
    assert "used for a split already" in again.json()["upload"][0]
    assert SplitJob.objects.count() == 1


def test_another_users_ticket_is_unknown(api: APIClient, bob: Any) -> None:
    ticket = upload(api, wav_bytes())
    response = split_from(client_for(bob), ticket["id"])
    assert response.status_code == 400
    assert response.json() == {"upload": ["No such upload ticket; ask for a new one."]}
    nonsense = split_from(client_for(bob), "not-a-ticket")
    assert nonsense.json() == response.json(), "no difference between foreign and absent"
    missing = split_from(client_for(bob), str(uuid.uuid4()))
    assert missing.json() == response.json()
    assert SplitJob.objects.count() == 0
    assert split_from(api, ticket["id"]).status_code == 201, "still the owner's"


def test_an_expired_ticket_is_refused(api: APIClient) -> None:
    ticket = upload(api, wav_bytes())
    UploadTicket.objects.filter(pk=ticket["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = split_from(api, ticket["id"])
    assert response.status_code == 400
    assert "has expired" in response.json()["upload"][0]
    assert SplitJob.objects.count() == 0


def test_nothing_or_part_uploaded_is_upload_missing(api: APIClient, media_root: Path) -> None:
    data = wav_bytes()
    ticket = ask_ticket(api, data)
    response = split_from(api, ticket["id"])
    assert response.status_code == 400
    assert "has not been uploaded" in response.json()["upload"][0]
    assert f"0 of {len(data)} bytes" in response.json()["upload"][0]
    half = data[: len(data) // 2]
    partial = send(ticket, half)
    assert partial.status_code == 200
    assert partial.json() == {"received": len(half), "complete": False}
    response = split_from(api, ticket["id"])
    assert f"{len(half)} of {len(data)} bytes" in response.json()["upload"][0]
    assert SplitJob.objects.count() == 0
    assert UploadTicket.objects.filter(pk=ticket["id"], used_at=None).exists(), "still usable"


def test_refused_audio_is_deleted_with_its_ticket(api: APIClient, media_root: Path) -> None:
    ticket = upload(api, b"plain text, no audio here" * 40, "notes.wav")
    response = split_from(api, ticket["id"])
    assert response.status_code == 400
    assert list(response.json()) == ["upload"]
    assert "not audio that can be decoded" in response.json()["upload"][0]
    assert SplitJob.objects.count() == 0
    assert files_under(media_root) == []
    assert not UploadTicket.objects.filter(pk=ticket["id"]).exists()


def test_a_refused_model_leaves_the_ticket_usable(api: APIClient, media_root: Path) -> None:
    ticket = upload(api, wav_bytes())
    response = split_from(api, ticket["id"], stem_model="nope")
    assert response.status_code == 400
    assert "Unknown model 'nope'" in response.json()["stem_model"][0]
    assert split_from(api, ticket["id"]).status_code == 201


@pytest.mark.parametrize("other", ["audio", "source_url"])
def test_upload_goes_alone(api: APIClient, other: str) -> None:
    ticket = upload(api, wav_bytes())
    extra: dict[str, Any] = {
        "audio": SimpleUploadedFile("a.wav", wav_bytes(), "audio/wav"),
        "source_url": "https://93.184.215.14/a.mp3",
    }
    response = api.post(SPLITS, {"upload": ticket["id"], other: extra[other]}, format="multipart")
    assert response.status_code == 400
    assert "not more" in response.json()["upload"][0]
    assert SplitJob.objects.count() == 0


# --- schema -------------------------------------------------------------------------


def test_the_schema_documents_direct_uploads() -> None:
    from openapi_spec_validator import validate

    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate(schema)
    tickets = schema["paths"]["/api/splits/uploads/"]["post"]
    assert {"201", "400", "401", "429"} <= set(tickets["responses"])
    ticket_ref = tickets["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    component = schema["components"]["schemas"][ticket_ref.rsplit("/", 1)[-1]]
    assert set(component["properties"]) == TICKET_KEYS
    request_ref = tickets["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    request = schema["components"]["schemas"][request_ref.rsplit("/", 1)[-1]]
    assert set(request["required"]) == {"filename", "size"}
    create = schema["paths"]["/api/splits/"]["post"]["requestBody"]["content"]
    create_ref = create["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "upload" in schema["components"]["schemas"][create_ref]["properties"]


@pytest.mark.parametrize(
    "filename",
    ["..", ".", "../../etc/passwd", "a\\b\\c.wav", "x" * 600 + ".wav", "é ü ß.wav", "a\x00b.wav"],
    ids=["dotdot", "dot", "traversal", "backslashes", "long", "unicode", "nul"],
)
def test_hostile_file_names_stay_in_their_folder(
    api: APIClient, media_root: Path, filename: str
) -> None:
    data = wav_bytes()
    response = api.post(UPLOADS, {"filename": filename, "size": len(data)}, format="json")
    assert response.status_code in (201, 400), response.content
    if response.status_code == 400:
        assert list(response.json()) == ["filename"]
        assert UploadTicket.objects.count() == 0
        return
    ticket = UploadTicket.objects.get(pk=response.json()["id"])
    assert f"/direct/{ticket.pk}/" in ticket.storage_name
    assert ".." not in ticket.storage_name.split("/")
    assert send(response.json(), data).status_code == 201
    [stored] = files_under(media_root)
    assert stored.is_relative_to(media_root)
    assert split_from(api, str(ticket.pk)).status_code == 201


def test_a_service_that_does_not_answer_is_a_503_not_a_500(settings: Any, api: APIClient) -> None:
    """The hosted destination presigns on the service; a refused connection is a real
    fault (nothing listens on the port), answered 503 without the service's URL."""
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    settings.AISTEMSPLITTER = {
        **settings.AISTEMSPLITTER,
        "BACKEND": "hosted",
        "API_KEY": "ast_test_unreachable",
        "BASE_URL": base_url,
        "HTTP_MAX_RETRIES": 0,
        "HTTP_TIMEOUT": 2.0,
        "DIRECT_UPLOAD": "hosted",
    }
    response = api.post(
        UPLOADS, {"filename": "take.wav", "size": 1000, "content_type": "audio/wav"}, format="json"
    )
    assert response.status_code == 503, response.content
    assert "try again" in response.json()["detail"]
    assert "127.0.0.1" not in response.content.decode()
    assert not UploadTicket.objects.exists()
