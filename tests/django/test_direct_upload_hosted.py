"""Direct uploads to the hosted service (the sandbox over HTTP): its presigned upload.

The client ``PUT``\\ s the file to the service's ``uploadUrl`` exactly as
``IssuedTicket.as_json()`` says; ``tickets.redeem`` validates it by reading it
back from ``audioUrl`` with byte ranges and creates a job whose input is that
upload: no byte is stored on our side, and the backend does not upload again.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.utils import timezone

from django_aistemsplitter import tickets
from django_aistemsplitter.destinations.httpranges import (
    RemoteFileMissingError,
    RemoteFileRefusedError,
    open_url,
)
from django_aistemsplitter.models import SplitJob, UploadTicket
from django_aistemsplitter.validation import InvalidSplitRequest
from tests.conftest import make_wav
from tests.django.conftest import hosted_settings, sandbox_stats
from tests.django.direct_uploads import (
    BIG_BYTES,
    STEMS,
    MiB,
    alice_fixture,  # noqa: F401 - the fixture "alice"
    ask_ticket,
    big_wav_fixture,  # noqa: F401 - the fixture "big_wav"
    issue,
    measure,
    send_upload,
    song_fixture,  # noqa: F401 - the fixture "song"
    split_upload,
    terminal,
)
from tests.sandbox.helpers import file_server
from tests.sandbox_process import SandboxProcess
from tests.waiting import wait_for
from tests.worker import WorkerProcess

pytestmark = [pytest.mark.django_db]

PRESIGN = "POST /audio/uploads"
RECEIVE = "PUT /uploads/{id}"


@pytest.fixture
def hosted(sandbox: SandboxProcess, settings: Any, media_root: Path) -> SandboxProcess:
    settings.AISTEMSPLITTER = hosted_settings(sandbox)
    return sandbox


def requests(sandbox: SandboxProcess) -> dict[str, int]:
    return dict(sandbox_stats(sandbox)["requests"])


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_the_ticket_is_the_services_presigned_put(
    hosted: SandboxProcess, alice: Any, song: Path
) -> None:
    issued = issue(alice, song)
    answer, ticket = issued.as_json(), issued.ticket
    assert answer["destination"] == "hosted" == ticket.destination
    assert answer["method"] == "PUT"
    assert answer["url"].startswith(f"{hosted.root_url}/uploads/upl_")
    assert answer["headers"]["Content-Type"] == "audio/wav"
    assert (answer["fields"], answer["file_field"]) == ({}, "")
    assert ticket.storage_name == ""
    assert set(ticket.remote_upload) == {"uploadId", "audioUrl", "expiresAt"}
    assert ticket.remote_upload["uploadId"].startswith("upl_")
    # The write credential goes to the client only, never into our database.
    stored = UploadTicket.objects.get(pk=ticket.pk)
    assert answer["url"] not in str(stored.remote_upload)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_upload_becomes_a_job_on_the_services_upload_and_succeeds(
    sandbox: SandboxProcess,
    alice: Any,
    song: Path,
    media_root: Path,
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    worker_factory(hosted_settings(sandbox))
    before = requests(sandbox)
    issued = issue(alice, song)
    sent = send_upload(issued.as_json(), song)
    assert sent.status_code == 200, sent.text
    job = tickets.redeem(issued.ticket.pk, owner=alice)
    upload_id = issued.ticket.remote_upload["uploadId"]
    assert job.remote_input == {"type": "uploaded_file", "uploadId": upload_id}
    assert not job.audio
    assert job.original_filename == "my song.wav"
    assert job.duration_seconds == pytest.approx(2.0)
    assert stored_files(media_root) == []  # nothing stored on our side
    wait_for(lambda: terminal(job), timeout=120, what="the hosted job to finish")
    assert job.status == SplitJob.Status.SUCCEEDED, (job.error_code, job.error_message)
    assert sorted(job.stems.values_list("name", flat=True)) == STEMS
    assert job.remote_input == {"type": "uploaded_file", "uploadId": upload_id}
    after = requests(sandbox)
    # One presign and one upload, the client's: the backend did not upload again.
    assert after.get(PRESIGN, 0) - before.get(PRESIGN, 0) == 1
    assert after.get(RECEIVE, 0) - before.get(RECEIVE, 0) == 1
    audio = [p for p in stored_files(media_root) if "/audio/" in str(p)]
    assert audio == []


def test_nothing_uploaded_is_upload_missing_and_the_ticket_stays_usable(
    hosted: SandboxProcess, alice: Any, song: Path
) -> None:
    issued = issue(alice, song)
    with pytest.raises(InvalidSplitRequest) as missing:
        tickets.redeem(issued.ticket.pk, owner=alice)
    assert (missing.value.code, missing.value.field) == ("upload_missing", "upload")
    assert "received nothing" in str(missing.value)
    assert "signature" not in str(missing.value)  # the URL is a credential
    assert send_upload(issued.as_json(), song).status_code == 200
    job = tickets.redeem(issued.ticket.pk, owner=alice)
    assert job.remote_input["uploadId"] == issued.ticket.remote_upload["uploadId"]


def test_a_file_larger_than_declared_is_refused_by_the_service(
    hosted: SandboxProcess, alice: Any, song: Path
) -> None:
    issued = issue(alice, song, size=song.stat().st_size - 1)
    refused = send_upload(issued.as_json(), song)
    assert refused.status_code == 413
    with pytest.raises(InvalidSplitRequest) as missing:
        tickets.redeem(issued.ticket.pk, owner=alice)
    assert (missing.value.code, missing.value.field) == ("upload_missing", "upload")
    assert SplitJob.objects.count() == 0


def test_refused_audio_ends_its_ticket(
    hosted: SandboxProcess, alice: Any, tmp_path: Path, media_root: Path
) -> None:
    """Nothing of ours to delete (the service's upload expires there); the ticket goes."""
    fake = tmp_path / "song.wav"
    fake.write_bytes(b"this is not audio at all " * 400)
    issued = issue(alice, fake)
    assert send_upload(issued.as_json(), fake).status_code == 200
    with pytest.raises(InvalidSplitRequest) as refused:
        tickets.redeem(issued.ticket.pk, owner=alice)
    assert (refused.value.code, refused.value.field) == ("not_audio", "audio")
    assert not UploadTicket.objects.filter(pk=issued.ticket.pk).exists()
    assert SplitJob.objects.count() == 0
    assert stored_files(media_root) == []


def test_purge_removes_an_expired_unused_ticket(
    hosted: SandboxProcess, alice: Any, song: Path
) -> None:
    issued = issue(alice, song)
    assert send_upload(issued.as_json(), song).status_code == 200
    UploadTicket.objects.update(expires_at=timezone.now() - 2 * tickets.ticket_ttl())
    assert tickets.purge_expired()["upload_tickets_purged"] == 1
    assert UploadTicket.objects.count() == 0


def test_the_ticket_expires_with_the_services_upload(
    sandbox_factory: Callable[..., SandboxProcess], settings: Any, alice: Any, song: Path
) -> None:
    short = sandbox_factory(url_ttl_seconds=1)
    settings.AISTEMSPLITTER = hosted_settings(short)
    issued = issue(alice, song)
    assert (issued.ticket.expires_at - timezone.now()).total_seconds() <= 2
    assert send_upload(issued.as_json(), song).status_code == 200
    wait_for(lambda: issued.ticket.is_expired, timeout=10, what="the ticket to expire")
    with pytest.raises(InvalidSplitRequest) as expired:
        tickets.redeem(issued.ticket.pk, owner=alice)
    assert expired.value.code == "upload_expired"


def test_the_ranged_reader_reads_any_part_and_no_more(
    hosted: SandboxProcess, tmp_path: Path
) -> None:
    path = make_wav(tmp_path / "song.wav", seconds=3.0)
    data = path.read_bytes()
    client = httpx.Client(
        base_url=hosted.base_url, headers={"Authorization": f"Bearer {hosted.api_key}"}
    )
    presigned = client.post(
        "/audio/uploads", json={"filename": "song.wav", "contentLength": len(data)}
    ).json()["data"]
    with pytest.raises(RemoteFileMissingError):
        open_url(presigned["audioUrl"])
    assert httpx.put(presigned["uploadUrl"], content=data).status_code == 200
    before = sandbox_stats(hosted)["downloads"]["started"]
    reader, size = open_url(presigned["audioUrl"])
    with reader:
        assert size == len(data)
        assert reader.read(44) == data[:44]
        reader.seek(-100, io.SEEK_END)
        assert reader.read() == data[-100:]
        reader.seek(1000)
        assert reader.read(5000) == data[1000:6000]
        assert reader.read(0) == b""
        reader.seek(len(data) + 10)
        assert reader.read(10) == b""
    # The probe and two reads (the third is in the first bytes, kept since the
    # first): three ranged requests, never the whole file once.
    assert sandbox_stats(hosted)["downloads"]["started"] - before == 3
    forged = presigned["audioUrl"].replace("signature=", "signature=0")
    with pytest.raises(RemoteFileRefusedError) as refused:
        open_url(forged)
    assert "signature" not in str(refused.value)


# --- 200 MB -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("tests.api.urls")
def test_a_200_mb_wav_reaches_a_succeeded_job_without_django_holding_it(
    sandbox: SandboxProcess,
    alice: Any,
    big_wav: Path,
    media_root: Path,
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    """The issue's "done when" on the hosted backend, through the API: a ticket, the
    PUT to the service, ``POST /api/splits/`` with ``upload``, the split.

    Redeeming reads a header and the size back through ranges, so the test
    process's memory stays far below the file's size; no byte lands in our storage.
    """
    worker_factory(hosted_settings(sandbox))
    ticket = ask_ticket(alice, big_wav)
    assert ticket["destination"] == "hosted"
    began = time.monotonic()
    sent = send_upload(ticket, big_wav)
    print(
        f"\nthe client's upload of 200 MB to the hosted sandbox: {time.monotonic() - began:.1f} s"
    )
    assert sent.status_code == 200, sent.text
    started = sandbox_stats(sandbox)["downloads"]["started"]
    job, cost = measure(lambda: split_upload(alice, ticket["id"]))
    print(f"\nPOST /api/splits/ of a 200 MB upload on the hosted sandbox: {cost}")
    assert cost.python_peak < 16 * MiB, cost
    assert cost.rss_peak_delta < 64 * MiB, cost
    assert sandbox_stats(sandbox)["downloads"]["started"] - started <= 4  # ranges, not a copy
    assert job.remote_input["type"] == "uploaded_file" and not job.audio
    started_job = time.monotonic()
    wait_for(lambda: terminal(job), timeout=600, what="the 200 MB hosted job to finish")
    print(f"the job, redeemed to succeeded: {time.monotonic() - started_job:.1f} s")
    assert job.status == SplitJob.Status.SUCCEEDED, (job.error_code, job.error_message)
    assert sorted(job.stems.values_list("name", flat=True)) == STEMS
    assert job.duration_seconds == pytest.approx(BIG_BYTES / 4 / 44100, abs=0.01)
    assert not [p for p in stored_files(media_root) if "/audio/" in str(p)]


def test_the_ranged_reader_copes_with_a_server_without_ranges(tmp_path: Path) -> None:
    """A server that answers 200 to every range still gives the right bytes (read and dropped)."""
    path = make_wav(tmp_path / "song.wav", seconds=1.0)
    data = path.read_bytes()
    with file_server(tmp_path) as root:
        reader, size = open_url(f"{root}/song.wav")
        with reader:
            assert size == len(data)
            reader.seek(5000)
            assert reader.read(100) == data[5000:5100]
            reader.seek(10)
            assert reader.read(10) == data[10:20]
        with pytest.raises(RemoteFileMissingError):
            open_url(f"{root}/nothing.wav")
