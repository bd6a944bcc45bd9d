"""An upload over ``MAX_UPLOAD_BYTES`` is refused while it streams in, not once it is all in.

Issue 9: the size limit was checked only after the whole body had been received
(and, past ``FILE_UPLOAD_MAX_MEMORY_SIZE``, written to a temporary file). Each
test sends a body many times the limit through the real request stack and counts
what was read of it: the input stream's bytes and the bytes the upload handler saw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import BOUNDARY, FakePayload, encode_multipart
from django.urls import reverse
from rest_framework.test import APIClient

from django_aistemsplitter import uploads
from django_aistemsplitter.models import SplitJob
from django_aistemsplitter.uploads import UploadLimitHandler
from tests.api.helpers import files_under

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.api.urls"),
    pytest.mark.reliability("paid-work-limits"),
]

LIMIT = 100_000
BODY_FILE = 40 * LIMIT  # 4 MB of "audio": 40 times the limit
CHUNK = 64 * 1024  # Django's upload chunk size
ADD_URL = "admin:aistemsplitter_splitjob_add"


@pytest.fixture
def small_limit(settings: Any, tmp_path: Path) -> Path:
    """MAX_UPLOAD_BYTES = 100 KB; every upload goes to a temporary file (as a big one would)."""
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "MAX_UPLOAD_BYTES": LIMIT}
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    temp = tmp_path / "upload-temp"
    temp.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(temp)
    return temp


@pytest.fixture
def handlers(monkeypatch: pytest.MonkeyPatch) -> list[UploadLimitHandler]:
    """Every UploadLimitHandler installed during the test, to read its counters."""
    installed: list[UploadLimitHandler] = []
    real = uploads.install

    def recording(request: Any, limit: int | None = None) -> UploadLimitHandler:
        handler = real(request, limit)
        installed.append(handler)
        return handler

    monkeypatch.setattr(uploads, "install", recording)
    return installed


def big_body(**fields: Any) -> bytes:
    audio = SimpleUploadedFile("huge.wav", b"RIFF" + b"\x00" * (BODY_FILE - 4), "audio/wav")
    return encode_multipart(BOUNDARY, {"audio": audio, **fields})


def post_counting(client: Any, path: str, body: bytes) -> tuple[Any, int]:
    """POST ``body``; return the response and how many of its bytes the server read."""
    payload = FakePayload(body)
    content_type = f"multipart/form-data; boundary={BOUNDARY}"  # sent as is, not re-encoded
    response = client.post(path, data=body, content_type=content_type, **{"wsgi.input": payload})
    return response, len(body) - len(payload)


def assert_stopped_early(read: int, body: bytes, handler: UploadLimitHandler) -> None:
    assert handler.refused is not None
    assert LIMIT < handler.received <= LIMIT + CHUNK, "the handler stopped at the limit"
    assert read <= LIMIT + 2 * CHUNK + 1024, f"read {read} of {len(body)} bytes"
    assert read < len(body) // 10


def test_api_stops_reading_an_upload_over_the_limit(
    small_limit: Path, handlers: list[UploadLimitHandler], media_root: Path, admin_user: Any
) -> None:
    client = APIClient()
    client.force_authenticate(admin_user)
    body = big_body(stem_model="6s")
    response, read = post_counting(client, "/api/splits/", body)
    assert response.status_code == 400, response.content
    assert response.json() == {
        "audio": [
            "The file is too large; the largest accepted upload is 97.7\xa0KB (MAX_UPLOAD_BYTES)."
        ]
    }
    [handler] = handlers
    assert_stopped_early(read, body, handler)
    assert SplitJob.objects.count() == 0
    assert files_under(media_root) == []
    assert files_under(small_limit) == [], "the partial temporary file is gone"


def test_admin_stops_reading_an_upload_over_the_limit(
    small_limit: Path, handlers: list[UploadLimitHandler], media_root: Path, admin_client: Any
) -> None:
    body = big_body(stem_model="htdemucs_ft", output_format="wav")
    response, read = post_counting(admin_client, reverse(ADD_URL), body)
    assert response.status_code == 200, "the form is shown again"
    errors = response.context["adminform"].form.errors.as_data()
    assert list(errors) == ["audio"]
    [error] = errors["audio"]
    assert error.code == "too_large"
    assert "the largest accepted upload is 97.7" in response.content.decode()
    [handler] = handlers
    assert_stopped_early(read, body, handler)
    assert SplitJob.objects.count() == 0
    assert files_under(media_root) == []
    assert files_under(small_limit) == []


def test_the_admin_still_checks_csrf_once_the_handler_is_in(
    small_limit: Path, admin_user: Any, media_root: Path
) -> None:
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post(reverse(ADD_URL), {"stem_model": "htdemucs_ft"})
    assert response.status_code == 403, "csrf_exempt on the view, csrf_protect inside it"
    assert SplitJob.objects.count() == 0


def test_the_limit_counts_every_file_of_a_request() -> None:
    handler = UploadLimitHandler(limit=1000)
    handler.new_file("audio", "a.wav", "audio/wav", None)
    assert handler.receive_data_chunk(b"x" * 600, 0) == b"x" * 600, "chunks pass through"
    handler.file_complete(600)
    handler.new_file("other", "b.wav", "audio/wav", None)
    with pytest.raises(uploads.StopUpload) as stop:
        handler.receive_data_chunk(b"x" * 600, 0)
    assert stop.value.connection_reset, "the rest of the body is not read"
    assert handler.received == 1200
    assert handler.refused is not None and handler.refused.code == "too_large"


def test_a_part_that_states_its_length_is_refused_before_its_data() -> None:
    handler = UploadLimitHandler(limit=1000)
    with pytest.raises(uploads.StopUpload):
        handler.new_file("audio", "a.wav", "audio/wav", 5000)
    assert handler.received == 0
    assert handler.refused is not None
    assert str(handler.refused) == (
        "The file is 4.9\xa0KB; the largest accepted upload is 1000\xa0bytes (MAX_UPLOAD_BYTES)."
    )
