"""The app's own direct-upload view: signed, streaming, resumable, one writer at a time.

Plain file storage ("app" destination). The view reads the body from the WSGI
stream in pieces and moves the finished file into storage, so a 200 MB WAV goes
through at constant memory (measured with tracemalloc around the request) and
becomes the job's audio as it is.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import tracemalloc
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from psycopg.pq import TransactionStatus
from rest_framework.test import APIClient

from django_aistemsplitter import tickets, upload_view
from django_aistemsplitter.destinations.app import CHUNK_SIZE, AppDestination
from django_aistemsplitter.models import SplitJob, UploadTicket
from tests.api.helpers import files_under, wav_bytes

pytestmark = [pytest.mark.urls("tests.api.urls")]

SPLITS = "/api/splits/"
UPLOADS = "/api/splits/uploads/"
MB = 1000 * 1000


@pytest.fixture(autouse=True)
def app_destination(settings: Any, media_root: Path) -> Path:
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "DIRECT_UPLOAD": "app"}
    return media_root


@pytest.fixture
def alice(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("alice", password="pw-alice")


@pytest.fixture
def api(alice: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(alice)
    return client


class Body(io.RawIOBase):
    """A request body read from ``source``; ``stop_after`` bytes, then the client is gone."""

    def __init__(self, source: io.BufferedIOBase | io.BytesIO, stop_after: int | None = None):
        super().__init__()
        self.source = source
        self.left = stop_after
        self.sent = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.left is not None:
            size = self.left if size < 0 else min(size, self.left)
        data = self.source.read(size)
        self.sent += len(data)
        if self.left is not None:
            self.left -= len(data)
        return data


def put(
    url: str,
    body: bytes | Body,
    *,
    length: int | None = None,
    content_range: str | None = None,
    method: str = "PUT",
) -> Any:
    """``method`` ``url`` through the whole request stack, the body read from a stream."""
    stream = body if isinstance(body, Body) else Body(io.BytesIO(body))
    size = length if length is not None else len(body) if isinstance(body, bytes) else 0
    extra: dict[str, Any] = {"wsgi.input": stream, "CONTENT_LENGTH": str(size)}
    if content_range is not None:
        extra["HTTP_CONTENT_RANGE"] = content_range
    return Client().generic(method, url, b"", content_type="audio/wav", **extra)


def ticket_for(api: APIClient, size: int, filename: str = "take.wav") -> dict[str, Any]:
    response = api.post(UPLOADS, {"filename": filename, "size": size}, format="json")
    assert response.status_code == 201, response.content
    return dict(response.json())


def stored(ticket: dict[str, Any]) -> Path:
    from django.conf import settings

    name = UploadTicket.objects.get(pk=ticket["id"]).storage_name
    return Path(settings.MEDIA_ROOT) / name


def staged(ticket: dict[str, Any]) -> Path:
    return AppDestination().staging_path(UploadTicket.objects.get(pk=ticket["id"]))


# --- a big file at constant memory -----------------------------------------------


def write_float_wav(path: Path, target_bytes: int, rate: int = 44100) -> Path:
    """A stereo 32-bit float WAV of about ``target_bytes``, written a block at a time."""
    frames = (target_bytes - 100) // 8
    block = rate * 10
    t = np.arange(block) / rate
    tone = (0.25 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    pair = np.stack([tone, tone], axis=1)
    with soundfile.SoundFile(
        path, "w", samplerate=rate, channels=2, subtype="FLOAT", format="WAV"
    ) as out:
        left = frames
        while left:
            count = min(block, left)
            out.write(pair[:count])
            left -= count
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for piece in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(piece)
    return digest.hexdigest()


@pytest.fixture
def scratch(tmp_path: Path, media_root: Path) -> Iterator[Path]:
    """``tmp_path``, emptied afterwards: a GB of WAV and stems is not worth keeping."""
    yield tmp_path
    for path in sorted(tmp_path.rglob("*"), reverse=True):
        if path.is_file():
            path.unlink()


@pytest.mark.django_db
@pytest.mark.slow
def test_a_200_mb_wav_streams_through_at_constant_memory_to_a_succeeded_job(
    api: APIClient,
    scratch: Path,
    settings: Any,
    celery_eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024  # only request.body/POST: never read here
    wav = write_float_wav(scratch / "big.wav", 200 * MB)
    size = wav.stat().st_size
    assert size > 199 * MB
    ticket = ticket_for(api, size, "big.wav")

    with wav.open("rb") as source:
        body = Body(source)  # type: ignore[arg-type]
        tracemalloc.start()
        try:
            response = put(ticket["url"], body, length=size)
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert response.status_code == 201, response.content
    assert response.json() == {"received": size, "complete": True}
    assert body.sent == size
    assert peak < 8 * MB, f"the view held {peak} bytes while streaming {size}"
    assert sha256_file(stored(ticket)) == sha256_file(wav)
    assert not staged(ticket).exists()

    with django_capture_on_commit_callbacks(execute=True):
        created = api.post(
            SPLITS,
            {"upload": ticket["id"], "stem_model": "htdemucs", "output_format": "wav"},
            format="json",
        )
    assert created.status_code == 201, created.content
    job = SplitJob.objects.get(pk=created.json()["id"])
    assert job.status == SplitJob.Status.SUCCEEDED, (job.error_code, job.error_message)
    assert job.audio.name == UploadTicket.objects.get(pk=ticket["id"]).storage_name
    assert job.duration_seconds == pytest.approx((size - 100) / 8 / 44100, rel=1e-3)
    assert job.stems.count() == 4


# --- resuming, refusing -----------------------------------------------------------


@pytest.mark.django_db
def test_an_interrupted_upload_resumes_where_it_stopped(api: APIClient, media_root: Path) -> None:
    data = wav_bytes(seconds=12.0)  # ~384 KB: more than one chunk
    assert len(data) > CHUNK_SIZE
    ticket = ticket_for(api, len(data))
    cut = CHUNK_SIZE + 1000
    gone = put(ticket["url"], Body(io.BytesIO(data), stop_after=cut), length=len(data))
    assert gone.status_code == 400
    assert gone.json()["received"] == cut
    assert gone["Upload-Offset"] == str(cut)
    assert staged(ticket).stat().st_size == cut
    assert UploadTicket.objects.get(pk=ticket["id"]).received_bytes == cut
    assert UploadTicket.objects.get(pk=ticket["id"]).writing_until is None, "lease released"

    status = put(ticket["url"], b"", content_range=f"bytes */{len(data)}")
    assert status.status_code == 200
    assert status.json() == {"received": cut, "complete": False}

    wrong = put(ticket["url"], data[10:], content_range=f"bytes 10-{len(data) - 1}/{len(data)}")
    assert wrong.status_code == 409
    assert wrong["Upload-Offset"] == str(cut)
    assert wrong["Range"] == f"bytes=0-{cut - 1}"

    rest = put(ticket["url"], data[cut:], content_range=f"bytes {cut}-{len(data) - 1}/{len(data)}")
    assert rest.status_code == 201, rest.content
    assert rest.json() == {"received": len(data), "complete": True}
    assert stored(ticket).read_bytes() == data
    assert not staged(ticket).exists()
    assert UploadTicket.objects.get(pk=ticket["id"]).received_bytes == len(data)

    again = put(ticket["url"], data)
    assert again.status_code == 409, "a complete upload is not overwritten"
    assert stored(ticket).read_bytes() == data

    created = api.post(SPLITS, {"upload": ticket["id"]}, format="json")
    assert created.status_code == 201, created.content


@pytest.mark.django_db
def test_a_plain_put_starts_a_partial_upload_over(api: APIClient) -> None:
    data = wav_bytes()
    ticket = ticket_for(api, len(data))
    assert put(ticket["url"], b"garbage!").status_code == 200
    response = put(ticket["url"], data)
    assert response.status_code == 201
    assert stored(ticket).read_bytes() == data


@pytest.mark.django_db
def test_more_than_declared_is_413_and_drops_the_staged_part(
    api: APIClient, media_root: Path
) -> None:
    data = wav_bytes()
    ticket = ticket_for(api, len(data))
    assert put(ticket["url"], data[:100]).status_code == 200
    assert staged(ticket).exists()
    too_long = put(
        ticket["url"], data[100:] + b"extra", content_range=f"bytes 100-{len(data) + 4}/*"
    )
    assert too_long.status_code == 413
    assert too_long.json()["received"] == 0
    assert not staged(ticket).exists()
    assert files_under(media_root) == []

    whole = put(ticket["url"], data + b"x")
    assert whole.status_code == 413
    total = put(ticket["url"], data[:10], content_range=f"bytes 0-9/{len(data) + 1}")
    assert total.status_code == 413
    assert files_under(media_root) == []
    assert put(ticket["url"], data).status_code == 201, "the ticket is still good"


@pytest.mark.django_db
def test_only_put_with_a_valid_token(api: APIClient, alice: Any) -> None:
    data = wav_bytes()
    ticket = ticket_for(api, len(data))
    other = ticket_for(api, len(data))
    url = ticket["url"]
    base, token = url.split("?token=")
    assert put(url, b"", method="GET").status_code == 405
    assert put(url, data, method="POST").status_code == 405
    options = put(url, b"", method="OPTIONS")
    assert options.status_code == 204 and "PUT" in options["Allow"]
    for bad in (
        base,
        f"{base}?token=",
        f"{base}?token={token[:-2]}xx",
        f"{base}?token={other['url'].split('?token=')[1]}",
        f"{base}?token={signing.dumps(ticket['id'], salt='another.salt')}",
        f"{base}?token=%C3%A9:%00:{'x' * 5000}",
    ):
        refused = put(bad, data)
        assert refused.status_code == 403, bad
        assert "not valid" in refused.json()["detail"]
    assert not staged(ticket).exists()
    assert put(url, data).status_code == 201


@pytest.mark.django_db
def test_an_expired_token_is_403(
    api: APIClient, alice: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_hours_ago = int(timezone.now().timestamp()) - 7200
    monkeypatch.setattr(
        signing.TimestampSigner, "timestamp", lambda self: signing.b62_encode(two_hours_ago)
    )
    ticket = ticket_for(api, 100)
    monkeypatch.undo()
    response = put(ticket["url"], b"x" * 100)
    assert response.status_code == 403
    assert not staged(ticket).exists()


@pytest.mark.django_db
def test_used_or_expired_ticket_is_410(api: APIClient, media_root: Path) -> None:
    data = wav_bytes()
    late = ticket_for(api, len(data))
    UploadTicket.objects.filter(pk=late["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert put(late["url"], data).status_code == 410
    used = ticket_for(api, len(data))
    assert put(used["url"], data).status_code == 201
    assert api.post(SPLITS, {"upload": used["id"]}, format="json").status_code == 201
    response = put(used["url"], data)
    assert response.status_code == 410
    assert "used or expired" in response.json()["detail"]
    UploadTicket.objects.filter(pk=used["id"]).delete()
    assert put(used["url"], data).status_code == 410, "a purged ticket is gone"


@pytest.mark.django_db
def test_a_body_without_length_is_411(api: APIClient) -> None:
    ticket = ticket_for(api, 10)
    response = Client().generic(
        "PUT", ticket["url"], b"", CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked"
    )
    assert response.status_code == 411


@pytest.mark.parametrize(
    "header",
    ["bytes 0-4", "items 0-4/10", "bytes 5-1/10", "bytes 0-9/5", "bytes 0-3/10"],
)
@pytest.mark.django_db
def test_a_malformed_content_range_is_400(api: APIClient, header: str) -> None:
    ticket = ticket_for(api, 10)
    response = put(ticket["url"], b"12345", content_range=header)
    assert response.status_code == 400
    assert "Content-Range" in response.json()["detail"]


# --- one writer at a time, without a long transaction ------------------------------


class GatedBody(Body):
    """A body that, once ``gate_at`` bytes are out, waits for ``go`` (a client that stalls)."""

    def __init__(self, data: bytes, gate_at: int) -> None:
        super().__init__(io.BytesIO(data))
        self.gate_at = gate_at
        self.waiting = threading.Event()
        self.go = threading.Event()

    def read(self, size: int = -1) -> bytes:
        if self.sent >= self.gate_at and not self.go.is_set():
            self.waiting.set()
            if not self.go.wait(30):
                raise OSError("the test never let the body go on")
        return super().read(size)


def lease_of(ticket: dict[str, Any]) -> Any:
    return UploadTicket.objects.values_list("writing_until", flat=True).get(pk=ticket["id"])


@pytest.mark.django_db(transaction=True)
def test_a_second_put_while_one_is_writing_is_409_and_a_split_is_refused(
    api: APIClient, alice: Any
) -> None:
    data = wav_bytes(seconds=12.0)
    assert len(data) > CHUNK_SIZE
    ticket = ticket_for(api, len(data))
    body = GatedBody(data, gate_at=CHUNK_SIZE)
    first: list[Any] = []

    def upload() -> None:
        try:
            first.append(put(ticket["url"], body, length=len(data)))
        finally:
            connection.close()

    writer = threading.Thread(target=upload)
    writer.start()
    try:
        assert body.waiting.wait(30), "the first PUT never started reading"
        assert lease_of(ticket) > timezone.now(), "the writing PUT holds a live lease"
        busy = put(ticket["url"], data)
        status = put(ticket["url"], b"", content_range=f"bytes */{len(data)}")
        refused = api.post(SPLITS, {"upload": ticket["id"]}, format="json")
        with pytest.raises(tickets.InvalidSplitRequest) as direct:
            tickets.redeem(ticket["id"], owner=alice)
    finally:
        body.go.set()
        writer.join()
    assert busy.status_code == 409
    assert "in progress" in busy.json()["detail"]
    assert status.status_code == 409, "as under the row lock: no answer while another writes"
    assert refused.status_code == 400
    assert "still being uploaded" in refused.json()["upload"][0]
    assert direct.value.code == "upload_busy"
    assert SplitJob.objects.count() == 0

    assert first[0].status_code == 201, first[0].content
    assert stored(ticket).read_bytes() == data, "the refused PUT wrote nothing"
    assert lease_of(ticket) is None, "released when the PUT ended"
    assert api.post(SPLITS, {"upload": ticket["id"]}, format="json").status_code == 201


@pytest.mark.parametrize("atomic_requests", [False, True])
@pytest.mark.django_db(transaction=True)
def test_no_transaction_is_open_while_the_body_is_read(
    api: APIClient, monkeypatch: pytest.MonkeyPatch, atomic_requests: bool
) -> None:
    """A slow client must not hold a transaction (or a pooled connection) open."""
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", atomic_requests)
    monkeypatch.setattr(upload_view, "RENEW_EVERY", timedelta(0))  # renew at every piece
    data = wav_bytes(seconds=30.0)  # several pieces
    ticket = ticket_for(api, len(data))
    seen: list[tuple[bool, Any, Any]] = []

    class Watched(Body):
        def read(self, size: int = -1) -> bytes:
            # The view's own connection (this thread's): between its statements.
            assert connection.connection is not None
            status = connection.connection.info.transaction_status
            seen.append((connection.in_atomic_block, status, lease_of(ticket)))
            return super().read(size)

    response = put(ticket["url"], Watched(io.BytesIO(data)), length=len(data))
    assert response.status_code == 201, response.content
    assert len(seen) > 3
    assert [(atomic, status) for atomic, status, _lease in seen] == [
        (False, TransactionStatus.IDLE)
    ] * len(seen)
    leases = [lease for _atomic, _status, lease in seen]
    assert None not in leases, "the lease is held while the body is read"
    assert len(set(leases)) > 1, "and renewed as the bytes come"
    assert lease_of(ticket) is None
    assert stored(ticket).read_bytes() == data


@pytest.mark.django_db
def test_a_stale_lease_does_not_block_a_new_put(api: APIClient) -> None:
    """A worker killed mid-upload leaves its lease; once expired it is free for the next PUT."""
    data = wav_bytes()
    ticket = ticket_for(api, len(data))
    assert put(ticket["url"], data[:100]).status_code == 200
    UploadTicket.objects.filter(pk=ticket["id"]).update(
        writing_until=timezone.now() - timedelta(seconds=1)
    )
    response = put(
        ticket["url"], data[100:], content_range=f"bytes 100-{len(data) - 1}/{len(data)}"
    )
    assert response.status_code == 201, response.content
    assert stored(ticket).read_bytes() == data
    assert lease_of(ticket) is None


@pytest.mark.django_db
def test_a_live_lease_refuses_a_put_and_a_split(api: APIClient, alice: Any) -> None:
    data = wav_bytes()
    ticket = ticket_for(api, len(data))
    assert put(ticket["url"], data).status_code == 201
    until = timezone.now() + timedelta(seconds=60)
    UploadTicket.objects.filter(pk=ticket["id"]).update(writing_until=until)

    busy = put(ticket["url"], b"", content_range=f"bytes */{len(data)}")
    assert busy.status_code == 409
    assert "in progress" in busy.json()["detail"]
    assert lease_of(ticket) == until, "a refused PUT leaves the other's lease alone"
    with pytest.raises(tickets.InvalidSplitRequest) as refused:
        tickets.redeem(ticket["id"], owner=alice)
    assert refused.value.code == "upload_busy"
    assert refused.value.field == "upload"
    response = api.post(SPLITS, {"upload": ticket["id"]}, format="json")
    assert response.status_code == 400
    assert "still being uploaded" in response.json()["upload"][0]
    assert SplitJob.objects.count() == 0

    UploadTicket.objects.filter(pk=ticket["id"]).update(
        writing_until=timezone.now() - timedelta(seconds=1)
    )
    assert api.post(SPLITS, {"upload": ticket["id"]}, format="json").status_code == 201


@pytest.mark.django_db
def test_a_put_whose_lease_was_taken_over_stops_writing(
    api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client stalled past its lease and another PUT took the ticket: it writes no more."""
    monkeypatch.setattr(upload_view, "RENEW_EVERY", timedelta(0))
    data = wav_bytes(seconds=12.0)
    ticket = ticket_for(api, len(data))
    theirs = timezone.now() + timedelta(seconds=60)

    class TakenOver(Body):
        def read(self, size: int = -1) -> bytes:
            if self.sent >= CHUNK_SIZE:  # meanwhile another request took the expired lease
                UploadTicket.objects.filter(pk=ticket["id"]).update(writing_until=theirs)
            return super().read(size)

    response = put(ticket["url"], TakenOver(io.BytesIO(data)), length=len(data))
    assert response.status_code == 409
    assert "in progress" in response.json()["detail"]
    assert staged(ticket).stat().st_size == CHUNK_SIZE, "nothing written after the takeover"
    row = UploadTicket.objects.get(pk=ticket["id"])
    assert row.writing_until == theirs, "the other request's lease is not released"
    assert row.received_bytes == 0, "nor its progress overwritten"


@pytest.mark.django_db(transaction=True)
def test_a_split_asked_for_while_another_redeems_is_refused_at_once(api: APIClient) -> None:
    """Two redeems of one ticket: the second does not wait for the first's row lock."""
    data = wav_bytes()
    ticket = ticket_for(api, len(data))
    assert put(ticket["url"], data).status_code == 201
    locked, release = threading.Event(), threading.Event()

    def redeeming() -> None:
        try:
            with transaction.atomic():
                UploadTicket.objects.select_for_update().get(pk=ticket["id"])
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=redeeming)
    holder.start()
    try:
        assert locked.wait(30)
        busy = api.post(SPLITS, {"upload": ticket["id"]}, format="json")
    finally:
        release.set()
        holder.join()
    assert busy.status_code == 400
    assert "being used right now" in busy.json()["upload"][0]
    assert SplitJob.objects.count() == 0
    assert api.post(SPLITS, {"upload": ticket["id"]}, format="json").status_code == 201


# --- purge ------------------------------------------------------------------------


@pytest.mark.django_db
def test_purge_removes_what_unused_expired_tickets_uploaded(
    api: APIClient, media_root: Path
) -> None:
    data = wav_bytes()
    complete = ticket_for(api, len(data))
    partial = ticket_for(api, len(data))
    kept = ticket_for(api, len(data))
    assert put(complete["url"], data).status_code == 201
    assert put(partial["url"], data[:50]).status_code == 200
    assert put(kept["url"], data).status_code == 201
    assert stored(complete).exists() and staged(partial).exists()
    UploadTicket.objects.filter(pk__in=[complete["id"], partial["id"]]).update(
        expires_at=timezone.now() - timedelta(days=1)
    )
    counts = tickets.purge_expired()
    assert counts["upload_tickets_purged"] == 2
    assert [p for p in files_under(media_root)] == [stored(kept)]
    assert list(UploadTicket.objects.values_list("pk", flat=True)) == [
        UploadTicket.objects.get(pk=kept["id"]).pk
    ]
    leftovers = [d for d in media_root.rglob("*") if d.is_dir() and not any(d.iterdir())]
    assert leftovers == [], "the tickets' folders went with their files"


@pytest.mark.django_db
def test_purge_leaves_an_upload_that_is_still_writing(api: APIClient) -> None:
    """A long upload that began before expiry renews its lease past the grace period:
    its staged part must not be deleted under it; once the lease lapses, it goes."""
    data = wav_bytes()
    ticket = ticket_for(api, len(data))
    assert put(ticket["url"], data[:50]).status_code == 200
    now = timezone.now()
    UploadTicket.objects.filter(pk=ticket["id"]).update(
        expires_at=now - timedelta(days=1), writing_until=now + timedelta(seconds=60)
    )
    part = staged(ticket)
    assert tickets.purge_expired(now)["upload_tickets_purged"] == 0
    assert part.exists()
    later = now + timedelta(seconds=61)
    assert tickets.purge_expired(later)["upload_tickets_purged"] == 1
    assert not part.exists()


@pytest.mark.django_db
def test_reconcile_splits_purges_too_for_sites_without_beat(
    api: APIClient, media_root: Path
) -> None:
    data = wav_bytes()
    ticket = ticket_for(api, len(data))
    assert put(ticket["url"], data).status_code == 201
    path = stored(ticket)
    assert path.exists()
    UploadTicket.objects.filter(pk=ticket["id"]).update(
        expires_at=timezone.now() - timedelta(days=1)
    )
    out = io.StringIO()
    call_command("reconcile_splits", stdout=out)
    assert "1 expired upload ticket(s) purged" in out.getvalue()
    assert not path.exists() and not UploadTicket.objects.exists()


# --- over real HTTP ---------------------------------------------------------------


@pytest.fixture
def http_user(transactional_db: None) -> Iterator[tuple[str, str]]:
    get_user_model().objects.create_user("carol", password="pw-carol")
    yield ("carol", "pw-carol")


def test_the_flow_over_http(
    live_server: Any,
    http_user: tuple[str, str],
    media_root: Path,
    celery_eager: None,
    tmp_path: Path,
) -> None:
    wav = tmp_path / "song.wav"
    wav.write_bytes(wav_bytes(seconds=30.0))  # ~1.9 MB: several chunks
    size = wav.stat().st_size
    with httpx.Client(base_url=live_server.url, auth=http_user, timeout=60) as http:
        ticket = http.post(UPLOADS, json={"filename": wav.name, "size": size}).json()
        assert ticket["url"].startswith(live_server.url)

        def pieces() -> Iterator[bytes]:
            with wav.open("rb") as handle:
                yield from iter(lambda: handle.read(100_000), b"")

        with httpx.Client(timeout=60) as anonymous:  # the signed URL is the only credential
            sent = anonymous.put(
                ticket["url"],
                content=pieces(),
                headers={**ticket["headers"], "Content-Length": str(size)},
            )
        assert sent.status_code == 201, sent.text
        assert sent.json() == {"received": size, "complete": True}
        created = http.post(SPLITS, json={"upload": ticket["id"]})
        assert created.status_code == 201, created.text
        job = http.get(created.json()["url"]).json()
    assert job["status"] == "succeeded", job
    assert len(job["stems"]) == 4
    audio = SplitJob.objects.get(pk=job["id"]).audio
    assert audio.name == UploadTicket.objects.get(pk=ticket["id"]).storage_name
    assert Path(audio.path).read_bytes() == wav.read_bytes()
    assert os.path.dirname(audio.name).endswith(f"direct/{ticket['id']}")
