"""Direct uploads to S3 (moto's server): a presigned POST, then a job on the object itself.

The client posts the file to the bucket exactly as ``IssuedTicket.as_json()``
says (a multipart form: the fields, then the file); ``tickets.redeem`` reads the
object back through byte ranges for validation and points the job at it, with
no copy. moto does not enforce POST policies, so the policy is checked as a
document and an oversized object that got in anyway is refused at redeem.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from botocore.config import Config
from django.utils import timezone
from storages.backends.s3 import S3File

from django_aistemsplitter import tickets
from django_aistemsplitter.destinations import get_destination
from django_aistemsplitter.exceptions import ConfigurationError
from django_aistemsplitter.filestreams import RangedObjectReader
from django_aistemsplitter.models import SplitJob, UploadTicket
from django_aistemsplitter.validation import InvalidSplitRequest
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
from tests.django.s3 import BUCKET, S3Server
from tests.sandbox_process import free_port
from tests.waiting import wait_for
from tests.worker import WorkerProcess

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def location(s3_server: S3Server, settings: Any) -> str:
    """The default storage on a fresh prefix of moto's bucket; returns that prefix."""
    prefix = f"direct-{time.monotonic_ns()}"
    settings.STORAGES = s3_server.storages(location=prefix)
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "BACKEND": "local"}
    return prefix


def policy_of(issued: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(issued["fields"]["policy"])))


def test_the_ticket_is_a_presigned_post_of_one_key_and_size(
    location: str, alice: Any, song: Path
) -> None:
    issued = issue(alice, song)
    answer = issued.as_json()
    ticket = issued.ticket
    assert answer["destination"] == "s3" == ticket.destination
    assert (answer["method"], answer["file_field"]) == ("POST", "file")
    assert answer["url"].endswith(f"/{BUCKET}")
    assert ticket.storage_name.endswith(f"/direct/{ticket.pk}/my_song.wav")
    assert ticket.storage_name.startswith("aistemsplitter/audio/")
    key = f"{location}/{ticket.storage_name}"
    assert answer["fields"]["key"] == key
    assert answer["fields"]["Content-Type"] == "audio/wav"
    policy = policy_of(answer)
    conditions = policy["conditions"]
    assert ["content-length-range", 1, song.stat().st_size] in conditions
    assert {"key": key} in conditions and {"bucket": BUCKET} in conditions
    assert {"Content-Type": "audio/wav"} in conditions
    expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert abs((expires - ticket.expires_at).total_seconds()) < 5
    assert UploadTicket.objects.filter(pk=ticket.pk).exists()


def test_an_upload_becomes_a_job_on_the_object_itself_and_succeeds(
    s3_server: S3Server,
    location: str,
    alice: Any,
    song: Path,
    celery_eager: None,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    issued = issue(alice, song)
    sent = send_upload(issued.as_json(), song)
    assert sent.status_code in (200, 201, 204), sent.text
    key = f"{location}/{issued.ticket.storage_name}"
    assert s3_server.keys(location) == [key]
    # Read through ranges: django-storages' whole-object download is never used.
    with (
        mock.patch.object(S3File, "file", new=property(_whole_object)),
        django_capture_on_commit_callbacks(execute=False) as pending,
    ):
        job = tickets.redeem(issued.ticket.pk, owner=alice, metadata={"k": "v"})
    assert job.audio.name == issued.ticket.storage_name
    assert job.original_filename == "my song.wav"
    assert job.duration_seconds == pytest.approx(2.0)
    assert job.metadata == {"k": "v"} and job.owner == alice
    assert s3_server.keys(location) == [key]  # no copy
    ticket = UploadTicket.objects.get(pk=issued.ticket.pk)
    assert ticket.job == job and ticket.used_at is not None
    with django_capture_on_commit_callbacks(execute=True):
        for callback in pending:
            callback()
    job.refresh_from_db()
    assert job.status == SplitJob.Status.SUCCEEDED, job.error_message
    assert sorted(job.stems.values_list("name", flat=True)) == STEMS
    audio_keys = [k for k in s3_server.keys(location) if "/audio/" in k]
    assert audio_keys == [key]
    # Single use: the same ticket cannot make a second job.
    with pytest.raises(InvalidSplitRequest) as used:
        tickets.redeem(issued.ticket.pk, owner=alice)
    assert (used.value.code, used.value.field) == ("upload_used", "upload")


def _whole_object(self: S3File) -> Any:
    raise AssertionError("the whole object was read into memory")


def test_a_bucket_that_does_not_answer_is_unavailable_and_keeps_the_upload(
    s3_server: S3Server, location: str, settings: Any, alice: Any, song: Path
) -> None:
    """Nothing listens where the storage points (a real fault): 503-kind error, the
    upload and the ticket kept; once the bucket answers again, the same ticket works."""
    issued = issue(alice, song)
    assert send_upload(issued.as_json(), song).status_code in (200, 201, 204)
    working = settings.STORAGES
    unreachable = s3_server.storages(location=location)
    unreachable["default"]["OPTIONS"]["endpoint_url"] = f"http://127.0.0.1:{free_port()}"
    unreachable["default"]["OPTIONS"]["client_config"] = Config(
        connect_timeout=1, retries={"max_attempts": 1}
    )
    settings.STORAGES = unreachable
    with pytest.raises(tickets.UploadUnavailableError):
        tickets.redeem(issued.ticket.pk, owner=alice)
    settings.STORAGES = working
    assert s3_server.keys(location) == [f"{location}/{issued.ticket.storage_name}"]
    job = tickets.redeem(issued.ticket.pk, owner=alice)
    assert job.audio.name == issued.ticket.storage_name


# soundfile's read callback swallows the reader's error (reported as unraisable) and
# sees the end of the file: exactly why redeem asks the reader, not the decoder.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_read_that_breaks_mid_validation_is_not_taken_for_bad_audio(
    s3_server: S3Server, location: str, alice: Any, song: Path
) -> None:
    """The connection drops inside the header (mocked: moto cannot drop one on demand).
    The decoder would call the file "not audio"; it must be kept, not deleted."""
    issued = issue(alice, song)
    assert send_upload(issued.as_json(), song).status_code in (200, 201, 204)
    real_fetch = RangedObjectReader._fetch

    class Dropped:
        def __init__(self, body: Any) -> None:
            self.body, self.left = body, 12

        def read(self, count: int) -> bytes:
            if self.left <= 0:
                raise ConnectionResetError("connection reset by peer")
            data = bytes(self.body.read(min(count, self.left)))
            self.left -= len(data)
            return data

        def close(self) -> None:
            self.body.close()

    def first_range_only(self: RangedObjectReader, first: int, last: int) -> Any:
        return Dropped(real_fetch(self, first, last))

    with (
        mock.patch.object(RangedObjectReader, "_fetch", first_range_only),
        pytest.raises(tickets.UploadUnavailableError),
    ):
        tickets.redeem(issued.ticket.pk, owner=alice)
    assert s3_server.keys(location) == [f"{location}/{issued.ticket.storage_name}"]
    assert UploadTicket.objects.filter(pk=issued.ticket.pk, used_at__isnull=True).exists()
    assert tickets.redeem(issued.ticket.pk, owner=alice).audio.name == issued.ticket.storage_name


def test_nothing_uploaded_is_upload_missing_and_the_ticket_stays_usable(
    location: str, alice: Any, song: Path
) -> None:
    issued = issue(alice, song)
    with pytest.raises(InvalidSplitRequest) as missing:
        tickets.redeem(issued.ticket.pk, owner=alice)
    assert (missing.value.code, missing.value.field) == ("upload_missing", "upload")
    assert "nothing has arrived" in str(missing.value)
    assert send_upload(issued.as_json(), song).status_code in (200, 201, 204)
    job = tickets.redeem(issued.ticket.pk, owner=alice)
    assert job.audio.name == issued.ticket.storage_name


def test_audio_that_is_refused_is_deleted_with_its_ticket(
    s3_server: S3Server, location: str, alice: Any, tmp_path: Path
) -> None:
    fake = tmp_path / "song.wav"
    fake.write_bytes(b"this is not audio at all " * 400)
    issued = issue(alice, fake)
    assert send_upload(issued.as_json(), fake).status_code in (200, 201, 204)
    assert len(s3_server.keys(location)) == 1
    with pytest.raises(InvalidSplitRequest) as refused:
        tickets.redeem(issued.ticket.pk, owner=alice)
    assert (refused.value.code, refused.value.field) == ("not_audio", "audio")
    assert s3_server.keys(location) == []
    assert not UploadTicket.objects.filter(pk=issued.ticket.pk).exists()
    assert SplitJob.objects.count() == 0


def test_a_file_larger_than_declared_is_refused_and_deleted(
    s3_server: S3Server, location: str, alice: Any, song: Path
) -> None:
    declared = song.stat().st_size - 1
    issued = issue(alice, song, size=declared)
    assert ["content-length-range", 1, declared] in policy_of(issued.as_json())["conditions"]
    # S3 answers this POST with EntityTooLarge; moto does not check policies, so the
    # object gets in here, and redeem is the second line.
    send_upload(issued.as_json(), song)
    with pytest.raises(InvalidSplitRequest) as refused:
        tickets.redeem(issued.ticket.pk, owner=alice)
    assert (refused.value.code, refused.value.field) == ("too_large", "upload")
    assert s3_server.keys(location) == []
    assert SplitJob.objects.count() == 0


def test_purge_deletes_what_an_expired_unused_ticket_uploaded(
    s3_server: S3Server, location: str, alice: Any, song: Path, tmp_path: Path
) -> None:
    unused = issue(alice, song)
    used = issue(alice, song)
    for issued in (unused, used):
        assert send_upload(issued.as_json(), song).status_code in (200, 201, 204)
    job = tickets.redeem(used.ticket.pk, owner=alice)
    long_ago = timezone.now() - tickets.ticket_ttl() - timedelta(minutes=1)
    UploadTicket.objects.update(expires_at=long_ago)
    counts = tickets.purge_expired()
    assert counts == {"upload_tickets_purged": 1, "upload_tickets_used_deleted": 1}
    # The unused ticket's object is gone; the job's audio stays.
    assert s3_server.keys(location) == [f"{location}/{job.audio.name}"]
    assert UploadTicket.objects.count() == 0
    assert tickets.purge_expired() == {"upload_tickets_purged": 0, "upload_tickets_used_deleted": 0}


def test_s3_needs_an_s3_storage(settings: Any, alice: Any, song: Path) -> None:
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "DIRECT_UPLOAD": "s3"}
    with pytest.raises(ConfigurationError, match="not django-storages' S3 storage"):
        issue(alice, song)
    assert UploadTicket.objects.count() == 0
    with pytest.raises(ConfigurationError):
        get_destination("s3").prepare(UploadTicket(filename="x.wav", size=1))


# --- 200 MB -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("tests.api.urls")
def test_a_200_mb_wav_reaches_a_succeeded_job_without_django_holding_it(
    s3_server: S3Server,
    alice: Any,
    big_wav: Path,
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    """The issue's "done when" on S3, through the API: a ticket, the POST to the
    bucket, ``POST /api/splits/`` with ``upload``, a worker splits it.

    Redeeming reads a header and the size through ranges, so the test process's
    memory stays far below the file's size (boto3 is warm: issuing presigned).
    """
    storages = s3_server.storages(location=f"big-{time.monotonic_ns()}")
    worker_factory({"BACKEND": "local", "ENGINE": "passthrough"}, storages=storages)
    location = storages["default"]["OPTIONS"]["location"]
    assert big_wav.stat().st_size == BIG_BYTES
    ticket = ask_ticket(alice, big_wav)
    assert ticket["destination"] == "s3"
    stored_as = UploadTicket.objects.get(pk=ticket["id"]).storage_name
    began = time.monotonic()
    sent = send_upload(ticket, big_wav)
    print(f"\nthe client's upload of 200 MB to S3: {time.monotonic() - began:.1f} s")
    assert sent.status_code in (200, 201, 204), sent.text

    def whole_object(self: S3File) -> Any:
        raise AssertionError("the whole object was read into memory")

    with mock.patch.object(S3File, "file", new=property(whole_object)):
        job, cost = measure(lambda: split_upload(alice, ticket["id"]))
    print(f"\nPOST /api/splits/ of a 200 MB upload on S3: {cost}")
    assert cost.python_peak < 16 * MiB, cost
    assert cost.rss_peak_delta < 64 * MiB, cost
    assert job.audio.name == stored_as
    assert s3_server.keys(location) == [f"{location}/{stored_as}"]
    started_job = time.monotonic()
    wait_for(lambda: terminal(job), timeout=600, what="the 200 MB S3 job to finish")
    print(f"the job, redeemed to succeeded: {time.monotonic() - started_job:.1f} s")
    assert job.status == SplitJob.Status.SUCCEEDED, (job.error_code, job.error_message)
    assert sorted(job.stems.values_list("name", flat=True)) == STEMS
    assert job.duration_seconds == pytest.approx(BIG_BYTES / 4 / 44100, abs=0.01)
    audio_keys = [k for k in s3_server.keys(location) if "/audio/" in k]
    assert audio_keys == [f"{location}/{stored_as}"]


def test_the_storages_object_parameters_become_form_fields(
    s3_server: S3Server, settings: Any, alice: Any, song: Path
) -> None:
    """What ``storage.save()`` would set on the object (ACL, caching, metadata) the POST sets."""
    prefix = f"params-{time.monotonic_ns()}"
    settings.STORAGES = s3_server.storages(
        location=prefix,
        default_acl="private",
        object_parameters={"CacheControl": "max-age=60", "Metadata": {"origin": "direct"}},
    )
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "BACKEND": "local"}
    issued = issue(alice, song).as_json()
    fields = issued["fields"]
    assert (fields["acl"], fields["Cache-Control"]) == ("private", "max-age=60")
    assert fields["x-amz-meta-origin"] == "direct"
    conditions = policy_of(issued)["conditions"]
    assert {"acl": "private"} in conditions and {"x-amz-meta-origin": "direct"} in conditions
    assert send_upload(issued, song).status_code in (200, 201, 204)
    head = s3_server.client().head_object(Bucket=BUCKET, Key=fields["key"])
    assert head["ContentType"] == "audio/wav"
    assert head["Metadata"] == {"origin": "direct"}


def test_an_object_parameter_a_post_cannot_set_is_a_clear_error(
    s3_server: S3Server, settings: Any, alice: Any, song: Path
) -> None:
    settings.STORAGES = s3_server.storages(
        location="sse-c", object_parameters={"SSECustomerAlgorithm": "AES256"}
    )
    with pytest.raises(ConfigurationError, match="SSECustomerAlgorithm"):
        issue(alice, song)
    assert UploadTicket.objects.count() == 0
