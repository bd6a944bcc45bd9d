"""The admin's add form with direct uploads: the ticket view, and the form redeeming a ticket.

The script of the add page (``direct_upload.js``, driven by a real browser in
``tests/browser/test_direct_upload_admin.py``) does three things, done here by
hand against the real views: ask ``add/upload-ticket/`` for a ticket, send the
bytes where it says (this site's streaming upload view, ``DIRECT_UPLOAD="app"``),
then post the form with ``upload=<ticket id>`` and no file.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from django_aistemsplitter.models import SplitJob, UploadTicket
from tests.api.helpers import files_under, wav_bytes
from tests.django.direct_uploads import TICKET_KEYS

pytestmark = pytest.mark.django_db

ADD_URL = "admin:aistemsplitter_splitjob_add"
TICKET_URL = "admin:aistemsplitter_splitjob_upload_ticket"


@pytest.fixture
def app_uploads(settings: Any, media_root: Path) -> Path:
    """Direct uploads to this site's own upload view, on a fresh MEDIA_ROOT."""
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "DIRECT_UPLOAD": "app"}
    return media_root


def ask_ticket(client: Client, **body: Any) -> Any:
    return client.post(reverse(TICKET_URL), json.dumps(body), content_type="application/json")


def send(client: Client, ticket: dict[str, Any], data: bytes) -> None:
    """Send ``data`` as the ticket says (the script's XMLHttpRequest, by hand)."""
    url = urlsplit(ticket["url"])
    assert url.hostname in (None, "", "testserver"), "the app destination is this site"
    target = url.path + (f"?{url.query}" if url.query else "")
    headers = dict(ticket["headers"])
    content_type = headers.pop("Content-Type", "application/octet-stream")
    if ticket["method"] == "PUT":
        response = client.generic("PUT", target, data, content_type=content_type, headers=headers)
    else:
        fields = {**ticket["fields"], ticket["file_field"]: SimpleUploadedFile("a", data)}
        response = client.post(target, fields, headers=headers)
    assert response.status_code < 300, response.content[:300]


def upload(client: Client, data: bytes, filename: str = "song.wav") -> dict[str, Any]:
    response = ask_ticket(client, filename=filename, size=len(data), content_type="audio/wav")
    assert response.status_code == 201, response.content
    ticket = response.json()
    send(client, ticket, data)
    return dict(ticket)


def post_form(client: Client, **data: Any) -> Any:
    payload = {"stem_model": "htdemucs", "output_format": "wav", "source_url": "", **data}
    return client.post(reverse(ADD_URL), payload)


# --- the page and the ticket view -----------------------------------------------------


def test_add_page_offers_the_direct_upload(admin_client: Client) -> None:
    html = admin_client.get(reverse(ADD_URL)).content.decode()
    assert f'data-aiss-ticket-url="{reverse(TICKET_URL)}"' in html
    assert 'type="hidden" name="upload"' in html
    assert "aistemsplitter/admin/direct_upload.js" in html
    assert 'data-aiss-msg-failed="The upload failed' in html, "the script's words, translated"
    assert 'type="file" name="audio"' in html, "the plain upload stays for pages without script"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"filename": "song.wav", "size": 10**12}, "size", "the largest accepted upload is"),
        ({"filename": "song.wav", "size": "1000"}, "size", "a positive whole number"),
        ({"filename": "song.wav", "size": 0}, "size", "a positive whole number"),
        ({"filename": "", "size": 1000}, "filename", "Give the file's name."),
    ],
    ids=["too-large", "size-as-text", "size-zero", "no-name"],
)
def test_ticket_view_refuses_bad_requests(
    admin_client: Client, body: dict[str, Any], field: str, message: str
) -> None:
    response = ask_ticket(admin_client, **body)
    assert response.status_code == 400
    answer = response.json()
    assert answer["field"] == field
    assert message in answer["error"]
    assert UploadTicket.objects.count() == 0


def test_ticket_view_refuses_what_is_not_a_json_object(admin_client: Client) -> None:
    url = reverse(TICKET_URL)
    for body in (b"not json", b"[1, 2]", b"\xff\xfe"):
        response = admin_client.post(url, body, content_type="application/json")
        assert response.status_code == 400
        assert "JSON object" in response.json()["error"]
    too_long = json.dumps({"filename": "x" * 5000, "size": 10})
    response = admin_client.post(url, too_long, content_type="application/json")
    assert response.status_code == 400
    assert admin_client.get(url).status_code == 405
    assert UploadTicket.objects.count() == 0


def test_ticket_view_needs_the_add_permission_and_a_login(client: Client) -> None:
    url = reverse(TICKET_URL)
    body = json.dumps({"filename": "song.wav", "size": 1000})
    anonymous = client.post(url, body, content_type="application/json")
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]

    staff = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_splitjob"))
    client.force_login(staff)
    response = client.post(url, body, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"] == "You may not add split jobs."
    assert UploadTicket.objects.count() == 0


def test_ticket_view_checks_the_csrf_token(admin_user: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    body = json.dumps({"filename": "song.wav", "size": 1000})
    response = client.post(reverse(TICKET_URL), body, content_type="application/json")
    assert response.status_code == 403
    assert UploadTicket.objects.count() == 0


def test_ticket_view_answers_the_api_shape(admin_client: Client, app_uploads: Path) -> None:
    response = ask_ticket(admin_client, filename="My Song.wav", size=1234)
    assert response.status_code == 201
    ticket = response.json()
    assert set(ticket) == TICKET_KEYS
    assert ticket["destination"] == "app" and ticket["max_bytes"] == 1234
    row = UploadTicket.objects.get(pk=ticket["id"])
    assert row.owner.username == "admin" and row.used_at is None


# --- the form with an upload ---------------------------------------------------------


def test_a_direct_upload_becomes_a_job(admin_client: Client, app_uploads: Path) -> None:
    audio = wav_bytes()
    ticket = upload(admin_client, audio, "direct song.wav")
    response = post_form(admin_client, upload=ticket["id"])
    job = SplitJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:aistemsplitter_splitjob_change", args=[job.pk])
    row = UploadTicket.objects.get(pk=ticket["id"])
    assert row.used_at is not None and row.job_id == job.pk
    assert job.original_filename == "direct song.wav"
    assert job.owner is not None and job.owner.username == "admin"
    assert job.audio.name == row.storage_name, "the job points at the upload, not a copy"
    with job.audio.open("rb") as stored:
        assert stored.read() == audio
    wavs = [p for p in files_under(app_uploads) if p.suffix == ".wav" and "stems" not in p.parts]
    assert len(wavs) == 1, wavs

    again = post_form(admin_client, upload=ticket["id"])
    assert again.status_code == 200
    assert "This upload was used for a split already" in again.content.decode()
    assert SplitJob.objects.count() == 1


def test_refused_audio_is_shown_on_the_file_and_leaves_nothing(
    admin_client: Client, app_uploads: Path
) -> None:
    ticket = upload(admin_client, b"these are not audio samples, just text\n" * 20, "notes.wav")
    response = post_form(admin_client, upload=ticket["id"])
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "not audio that can be decoded" in " ".join(form.errors["audio"])
    html = response.content.decode()
    assert ticket["id"] not in html, "the spent ticket is not posted again"
    assert SplitJob.objects.count() == 0
    assert not UploadTicket.objects.filter(pk=ticket["id"]).exists()
    assert files_under(app_uploads) == []


def test_a_refused_model_keeps_the_upload_for_the_next_try(
    admin_client: Client, app_uploads: Path
) -> None:
    ticket = upload(admin_client, wav_bytes())
    refused = post_form(admin_client, upload=ticket["id"], stem_model="no-such-model")
    assert refused.status_code == 200
    assert "stem_model" in refused.context["adminform"].form.errors
    html = refused.content.decode()
    assert f'value="{ticket["id"]}"' in html, "the form keeps the uploaded file's ticket"
    assert SplitJob.objects.count() == 0

    accepted = post_form(admin_client, upload=ticket["id"], stem_model="htdemucs_6s")
    assert accepted.status_code == 302
    assert SplitJob.objects.get().stem_model == "htdemucs_6s"


def test_an_upload_and_a_file_together_are_refused(admin_client: Client, media_root: Path) -> None:
    file = SimpleUploadedFile("song.wav", wav_bytes(), "audio/wav")
    response = post_form(admin_client, upload=str(uuid.uuid4()), audio=file)
    assert response.status_code == 200
    assert "Give one of an audio file, a URL or an upload, not more." in response.content.decode()
    assert SplitJob.objects.count() == 0
    assert files_under(media_root) == []


def _ticket(owner: Any, **fields: Any) -> UploadTicket:
    values: dict[str, Any] = {
        "owner": owner,
        "destination": "app",
        "backend": "local",
        "filename": "song.wav",
        "content_type": "audio/wav",
        "size": 1000,
        "storage_name": "aistemsplitter/audio/direct/x/song.wav",
        "expires_at": timezone.now() + timedelta(hours=1),
        **fields,
    }
    return UploadTicket.objects.create(**values)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("unknown", "No such upload ticket; ask for a new one."),
        ("not-a-uuid", "No such upload ticket; ask for a new one."),
        ("someone-else's", "No such upload ticket; ask for a new one."),
        ("expired", "This upload ticket has expired"),
        ("used", "This upload was used for a split already"),
    ],
)
def test_tickets_that_cannot_be_redeemed(
    admin_client: Client, admin_user: Any, media_root: Path, kind: str, message: str
) -> None:
    other = get_user_model().objects.create_user("someone-else")
    ids = {
        "unknown": str(uuid.uuid4()),
        "not-a-uuid": "../../etc/passwd",
        "someone-else's": lambda: _ticket(other).pk,
        "expired": lambda: _ticket(admin_user, expires_at=timezone.now() - timedelta(seconds=1)).pk,
        "used": lambda: _ticket(admin_user, used_at=timezone.now()).pk,
    }
    value = ids[kind]
    ticket_id = str(value() if callable(value) else value)
    response = post_form(admin_client, upload=ticket_id)
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert message in " ".join(form.errors["audio"]), form.errors
    assert SplitJob.objects.count() == 0
