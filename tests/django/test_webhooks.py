"""The webhook receiver: signed raw bodies through Django's test client, on PostgreSQL.

The Celery boundary is replaced by recording fakes (``tasks`` fixture); the real
worker path is covered elsewhere.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import sys
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import include, path, resolve, reverse

from django_aistemsplitter import contract
from django_aistemsplitter.backends.hosted import webhook_url as get_webhook_url
from django_aistemsplitter.client.signing import sign_payload
from django_aistemsplitter.client.types import derived_event_id
from django_aistemsplitter.deliveries import replay_unmatched
from django_aistemsplitter.exceptions import ConfigurationError
from django_aistemsplitter.models import SplitJob, SplitStatus, WebhookEvent
from django_aistemsplitter.signals import webhook_received

urlpatterns = [path("aistemsplitter/", include("django_aistemsplitter.urls"))]

pytestmark = [pytest.mark.urls(__name__)]

URL = "/aistemsplitter/webhook/"
SECRET = "whsec_test_primary_0123456789abcdef"
OLD_SECRET = "whsec_test_rotated_out_fedcba9876543210"
SPLIT_ID = "split_abc123"


# --- fixtures -----------------------------------------------------------------------


class FakeTask:
    """Stands in for a Celery task: records every way of sending it."""

    def __init__(self, name: str) -> None:
        self.name = f"django_aistemsplitter.tasks.{name}"
        self.calls: list[tuple[Any, ...]] = []

    def delay(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(args)

    def apply_async(self, args: Any = (), kwargs: Any = None, **options: Any) -> None:
        self.calls.append(tuple(args or ()))


class FakeTasks:
    def __init__(self) -> None:
        self.refresh_split = FakeTask("refresh_split")
        self.ingest_split = FakeTask("ingest_split")


@pytest.fixture
def tasks(monkeypatch: pytest.MonkeyPatch) -> FakeTasks:
    """Replace ``refresh_split``/``ingest_split`` with recorders.

    If ``django_aistemsplitter.tasks`` is not importable (yet), a stub module with
    an ``enqueue_on_commit`` that sends on commit stands in for it.
    """
    try:
        module: Any = importlib.import_module("django_aistemsplitter.tasks")
    except ImportError:
        module = types.ModuleType("django_aistemsplitter.tasks")

        def enqueue_on_commit(task: Any, *args: Any) -> None:
            transaction.on_commit(lambda: task.delay(*args))

        module.enqueue_on_commit = enqueue_on_commit
        monkeypatch.setitem(sys.modules, "django_aistemsplitter.tasks", module)
    fake = FakeTasks()
    monkeypatch.setattr(module, "refresh_split", fake.refresh_split, raising=False)
    monkeypatch.setattr(module, "ingest_split", fake.ingest_split, raising=False)
    return fake


@pytest.fixture(autouse=True)
def webhook_settings(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(contract.WEBHOOK_SECRET_ENV, raising=False)
    settings.AISTEMSPLITTER = {
        "BACKEND": "hosted",
        "API_KEY": "ast_test_key",
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_BASE_URL": "https://app.example.com",
    }


def make_job(status: Any = SplitStatus.PROCESSING, remote_id: str = SPLIT_ID) -> SplitJob:
    return SplitJob.objects.create(
        stem_model="htdemucs_ft",
        backend="hosted",
        remote_id=remote_id,
        status=status,
        source_url="https://example.com/song.mp3",
        progress=0.25,
    )


def split_data(status: str, split_id: str = SPLIT_ID) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": split_id,
        "status": status,
        "stemModel": "htdemucs_ft",
        "filename": "song.mp3",
        "durationSeconds": 180.0,
        "creditsUsed": 180,
        "progress": 1.0 if status in contract.TERMINAL_STATUSES else 0.5,
        "createdAt": "2025-01-01T00:00:00Z",
        "updatedAt": "2025-01-01T00:02:00Z",
        "stems": {},
        "error": None,
        "metadata": {},
    }
    if status == contract.SUCCEEDED:
        data["stems"] = {
            s: f"https://cdn.example.com/{split_id}/{s}.wav" for s in contract.FOUR_STEMS
        }
    if status == contract.FAILED:
        data["error"] = {"code": "UNSUPPORTED_AUDIO", "message": "cannot decode"}
    return data


def full_event(
    status: str = contract.SUCCEEDED, event_id: str = "evt_001", split_id: str = SPLIT_ID
) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": f"split.{status}",
        "created": int(time.time()),
        "data": split_data(status, split_id),
    }


def thin_event(status: str = contract.SUCCEEDED, split_id: str = SPLIT_ID) -> dict[str, Any]:
    return {"event": contract.EVENT_SPLIT_COMPLETED, "data": {"id": split_id, "status": status}}


def encode(payload: Any) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def post(
    client: Client,
    payload: Any,
    *,
    secret: str | list[str] = SECRET,
    timestamp: int | None = None,
    header: str | None = "AIStemSplitter-Signature",
    body: bytes | None = None,
) -> Any:
    """POST ``payload`` signed with ``secret``; ``body`` replaces what is sent (tampering)."""
    raw = encode(payload)
    headers = {header: sign_payload(raw, secret, timestamp)} if header else {}
    return client.post(
        URL,
        data=body if body is not None else raw,
        content_type="application/json",
        headers=headers,
    )


def job_state(job: SplitJob) -> tuple[Any, ...]:
    job.refresh_from_db()
    return (job.status, job.progress, job.error_code, job.credits_used, job.updated_at)


# --- the happy paths ------------------------------------------------------------


@pytest.mark.django_db
def test_url_is_namespaced_and_webhook_url_is_absolute() -> None:
    assert reverse("aistemsplitter:webhook") == URL
    assert get_webhook_url() == "https://app.example.com" + URL


@pytest.mark.django_db
def test_get_webhook_url_is_none_without_base_url(settings: Any) -> None:
    settings.AISTEMSPLITTER = {"WEBHOOK_SECRET": SECRET}
    assert get_webhook_url() is None


@pytest.mark.django_db
def test_succeeded_event_advances_job_and_enqueues_ingest_on_commit(
    client: Client, tasks: FakeTasks, django_capture_on_commit_callbacks: Any
) -> None:
    job = make_job(SplitStatus.PROCESSING)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post(client, full_event(contract.SUCCEEDED))
    assert response.status_code == 200
    assert response.json() == {"received": True, "outcome": "processed"}
    row = WebhookEvent.objects.get()
    assert row.event_id == "evt_001"
    assert row.type == "split.succeeded"
    assert row.remote_id == SPLIT_ID
    assert row.remote_status == "succeeded"
    assert row.job_id == job.pk
    assert row.deliveries == 1
    assert row.outcome == WebhookEvent.Outcome.PROCESSED
    assert row.processed_at is not None
    assert row.payload["data"]["id"] == SPLIT_ID
    job.refresh_from_db()
    assert job.progress == 1.0
    assert job.credits_used == 180
    assert callbacks, "the ingest must be enqueued on commit, not inside the transaction"
    assert tasks.ingest_split.calls == [(str(job.pk),)]
    assert tasks.refresh_split.calls == []


@pytest.mark.django_db
def test_failed_event_fails_the_job(client: Client, tasks: FakeTasks) -> None:
    job = make_job(SplitStatus.PROCESSING)
    response = post(client, full_event(contract.FAILED, event_id="evt_fail"))
    assert response.status_code == 200
    job.refresh_from_db()
    assert job.status == SplitStatus.FAILED
    assert job.error_code == "UNSUPPORTED_AUDIO"
    assert WebhookEvent.objects.get().outcome == WebhookEvent.Outcome.PROCESSED


@pytest.mark.django_db
def test_thin_event_enqueues_a_refresh_and_does_not_apply(
    client: Client, tasks: FakeTasks, django_capture_on_commit_callbacks: Any
) -> None:
    job = make_job(SplitStatus.PROCESSING)
    before = job_state(job)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, thin_event(contract.SUCCEEDED))
    assert response.status_code == 200
    row = WebhookEvent.objects.get()
    assert row.event_id == derived_event_id(SPLIT_ID, contract.SUCCEEDED)
    assert row.type == contract.EVENT_SPLIT_COMPLETED
    assert row.outcome == WebhookEvent.Outcome.PROCESSED
    assert row.job_id == job.pk
    assert tasks.refresh_split.calls == [(str(job.pk),)]
    assert tasks.ingest_split.calls == []
    assert job_state(job) == before  # the GET decides, not the thin event


@pytest.mark.reliability("webhook-audit")
@pytest.mark.django_db
def test_thin_event_redelivered_is_a_duplicate(
    client: Client, tasks: FakeTasks, django_capture_on_commit_callbacks: Any
) -> None:
    make_job(SplitStatus.PROCESSING)
    with django_capture_on_commit_callbacks(execute=True):
        post(client, thin_event())
        second = post(client, thin_event())
    assert second.json()["outcome"] == "duplicate"
    row = WebhookEvent.objects.get()
    assert row.deliveries == 2
    assert len(tasks.refresh_split.calls) == 1


@pytest.mark.django_db
def test_succeeded_event_without_stems_is_refetched(
    client: Client, tasks: FakeTasks, django_capture_on_commit_callbacks: Any
) -> None:
    job = make_job(SplitStatus.PROCESSING)
    event = full_event(contract.SUCCEEDED)
    event["data"]["stems"] = {}
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, event).status_code == 200
    assert tasks.refresh_split.calls == [(str(job.pk),)]
    assert tasks.ingest_split.calls == []


@pytest.mark.django_db
def test_lowercase_header_name_is_accepted(client: Client, tasks: FakeTasks) -> None:
    make_job()
    response = post(client, full_event(), header="aistemsplitter-signature")
    assert response.status_code == 200
    assert WebhookEvent.objects.count() == 1


@pytest.mark.django_db
def test_csrf_is_not_required(tasks: FakeTasks) -> None:
    make_job()
    response = post(Client(enforce_csrf_checks=True), full_event())
    assert response.status_code == 200


def test_view_is_exempt_from_atomic_requests() -> None:
    view = resolve(URL).func
    assert "default" in view._non_atomic_requests  # type: ignore[attr-defined]
    assert view.csrf_exempt is True  # type: ignore[attr-defined]


@pytest.mark.reliability("webhook-audit")
@pytest.mark.django_db
def test_signal_is_sent_for_first_and_duplicate_delivery(client: Client, tasks: FakeTasks) -> None:
    make_job()
    seen: list[tuple[str, bool, str]] = []

    def receiver(sender: Any, event: WebhookEvent, created: bool, **kwargs: Any) -> None:
        seen.append((event.event_id, created, event.outcome))

    webhook_received.connect(receiver)
    try:
        post(client, full_event())
        post(client, full_event())
    finally:
        webhook_received.disconnect(receiver)
    # The row keeps its first outcome; ``created=False`` is what says "duplicate".
    assert seen == [("evt_001", True, "received"), ("evt_001", False, "processed")]


# --- rejected deliveries ------------------------------------------------------------


REJECTIONS: dict[str, dict[str, Any]] = {
    "forged": {"header_value": "forged"},
    "wrong_secret": {"secret": "whsec_somebody_else"},
    "stale": {"timestamp": int(time.time()) - 3600},
    "future": {"timestamp": int(time.time()) + 3600},
    "tampered": {"tamper": True},
    "missing_header": {"header": None},
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_bad_deliveries_answer_400_and_change_nothing(
    client: Client,
    tasks: FakeTasks,
    case: str,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    spec = dict(REJECTIONS[case])
    job = make_job(SplitStatus.PROCESSING)
    before = job_state(job)
    payload = spec.pop("payload", full_event())
    raw = encode(payload)
    headers: dict[str, str] = {}
    if spec.get("header", "AIStemSplitter-Signature"):
        if spec.get("header_value") == "forged":
            value = f"t={int(time.time())},v1={'0' * 64}"
        else:
            value = sign_payload(raw, spec.get("secret", SECRET), spec.get("timestamp"))
        headers["AIStemSplitter-Signature"] = value
    body = raw.replace(b"succeeded", b"failed") if spec.get("tamper") else raw
    assert body != raw or not spec.get("tamper")
    caplog.set_level(logging.DEBUG)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(URL, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0
    assert job_state(job) == before
    assert callbacks == []
    assert tasks.refresh_split.calls == tasks.ingest_split.calls == []
    assert "Rejected AiStemSplitter webhook" in caplog.text
    for secret_text in (SECRET, *headers.values()):
        assert secret_text not in caplog.text
        assert secret_text.encode() not in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_other_methods_are_405(client: Client, method: str) -> None:
    response = getattr(client, method)(URL)
    assert response.status_code == 405
    assert "POST" in response["Allow"]
    assert WebhookEvent.objects.count() == 0


@pytest.mark.django_db
def test_missing_secret_is_a_configuration_error(
    settings: Any, tasks: FakeTasks, django_capture_on_commit_callbacks: Any
) -> None:
    settings.AISTEMSPLITTER = {"BACKEND": "hosted", "API_KEY": "ast_test_key"}
    make_job()
    with pytest.raises(ConfigurationError, match="WEBHOOK_SECRET"):
        post(Client(), full_event())
    response = post(Client(raise_request_exception=False), full_event())
    assert response.status_code == 500
    assert WebhookEvent.objects.count() == 0


@pytest.mark.django_db
def test_secret_from_environment(
    settings: Any, monkeypatch: pytest.MonkeyPatch, client: Client, tasks: FakeTasks
) -> None:
    settings.AISTEMSPLITTER = {"BACKEND": "hosted", "API_KEY": "ast_test_key"}
    monkeypatch.setenv(contract.WEBHOOK_SECRET_ENV, SECRET)
    make_job()
    assert post(client, full_event()).status_code == 200
    assert post(client, full_event(event_id="evt_2"), secret="other").status_code == 400


@pytest.mark.django_db
def test_environment_secret_may_list_rotated_secrets(
    settings: Any, monkeypatch: pytest.MonkeyPatch, client: Client, tasks: FakeTasks
) -> None:
    settings.AISTEMSPLITTER = {"BACKEND": "hosted", "API_KEY": "ast_test_key"}
    monkeypatch.setenv(contract.WEBHOOK_SECRET_ENV, f"{OLD_SECRET}, {SECRET}")
    make_job()
    assert post(client, full_event(), secret=OLD_SECRET).status_code == 200
    assert post(client, full_event(event_id="evt_2"), secret=SECRET).status_code == 200
    assert post(client, full_event(event_id="evt_3"), secret="whsec_other").status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize(
    "signing_secrets",
    [[SECRET], [OLD_SECRET], [OLD_SECRET, SECRET], ["whsec_unknown", SECRET]],
    ids=["new", "old", "both", "unknown_plus_new"],
)
def test_rotation_accepts_any_configured_secret(
    settings: Any, client: Client, tasks: FakeTasks, signing_secrets: list[str]
) -> None:
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "WEBHOOK_SECRET": [OLD_SECRET, SECRET]}
    make_job()
    response = post(client, full_event(), secret=signing_secrets)
    assert response.status_code == 200
    assert WebhookEvent.objects.count() == 1


@pytest.mark.django_db
def test_rotation_still_rejects_unknown_secrets(
    settings: Any, client: Client, tasks: FakeTasks
) -> None:
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "WEBHOOK_SECRET": [OLD_SECRET, SECRET]}
    make_job()
    assert post(client, full_event(), secret="whsec_unknown").status_code == 400
    assert WebhookEvent.objects.count() == 0


@pytest.mark.django_db
def test_secrets_never_logged_or_answered(
    client: Client, tasks: FakeTasks, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    make_job()
    raw = encode(full_event())
    good_header = sign_payload(raw, SECRET)
    bad_header = sign_payload(raw, "whsec_attacker")
    responses = [
        client.post(
            URL, raw, content_type="application/json", headers={contract.SIGNATURE_HEADER: h}
        )
        for h in (bad_header, good_header, good_header)
    ]
    assert [r.status_code for r in responses] == [400, 200, 200]
    for text in (SECRET, good_header, bad_header, good_header.split("v1=")[1]):
        assert text not in caplog.text
        for r in responses:
            assert text.encode() not in r.content


# --- duplicates, ordering and failures ------------------------------------------------


@pytest.mark.reliability("webhook-audit")
@pytest.mark.django_db
def test_duplicate_delivery_is_counted_and_processed_once(
    client: Client, tasks: FakeTasks, django_capture_on_commit_callbacks: Any
) -> None:
    job = make_job(SplitStatus.PROCESSING)
    with django_capture_on_commit_callbacks(execute=True):
        first = post(client, full_event())
        second = post(client, full_event())
        third = post(client, full_event())
    assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
    assert first.json()["outcome"] == "processed"
    assert second.json()["outcome"] == third.json()["outcome"] == "duplicate"
    row = WebhookEvent.objects.get()
    assert row.deliveries == 3
    # The audit trail keeps what the first delivery did (issue 9, item 8).
    assert row.outcome == WebhookEvent.Outcome.PROCESSED
    assert row.processed_at is not None
    assert tasks.ingest_split.calls == [(str(job.pk),)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("job_status", "event_status"),
    [
        (SplitStatus.SUCCEEDED, contract.FAILED),
        (SplitStatus.SUCCEEDED, contract.SUCCEEDED),
        (SplitStatus.FAILED, contract.SUCCEEDED),
        (SplitStatus.CANCELLED, contract.SUCCEEDED),
        (SplitStatus.DOWNLOADING, contract.PROCESSING),
        (SplitStatus.PROCESSING, contract.QUEUED),
    ],
)
def test_backwards_event_is_ignored_and_job_unchanged(
    client: Client,
    tasks: FakeTasks,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
    job_status: str,
    event_status: str,
) -> None:
    job = make_job(job_status)
    before = job_state(job)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, full_event(event_status, event_id=f"evt_{event_status}"))
    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"
    row = WebhookEvent.objects.get()
    assert row.outcome == WebhookEvent.Outcome.IGNORED
    assert row.job_id == job.pk
    assert job_state(job) == before
    assert tasks.ingest_split.calls == tasks.refresh_split.calls == []


@pytest.mark.django_db
def test_thin_event_for_finished_job_is_ignored(client: Client, tasks: FakeTasks) -> None:
    make_job(SplitStatus.SUCCEEDED)
    response = post(client, thin_event(contract.SUCCEEDED))
    assert response.json()["outcome"] == "ignored"
    assert tasks.refresh_split.calls == []


@pytest.mark.django_db
def test_unknown_job_is_recorded_with_200_then_replayed(
    client: Client, tasks: FakeTasks, django_capture_on_commit_callbacks: Any
) -> None:
    response = post(client, full_event(contract.FAILED, split_id="split_nobody"))
    assert response.status_code == 200
    row = WebhookEvent.objects.get()
    assert row.outcome == WebhookEvent.Outcome.UNKNOWN_JOB
    assert row.job is None
    # The submitting code stores the remote id late, then replays what arrived early.
    job = make_job(SplitStatus.SUBMITTED, remote_id="split_nobody")
    with django_capture_on_commit_callbacks(execute=True):
        handled = replay_unmatched(job)
    assert [h.event_id for h in handled] == ["evt_001"]
    row.refresh_from_db()
    assert row.outcome == WebhookEvent.Outcome.PROCESSED
    assert row.job_id == job.pk
    job.refresh_from_db()
    assert job.status == SplitStatus.FAILED
    assert replay_unmatched(job) == []


@pytest.mark.django_db
def test_processing_error_answers_500_and_redelivery_processes_again(
    client: Client,
    tasks: FakeTasks,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import django_aistemsplitter.jobs as jobs

    job = make_job(SplitStatus.PROCESSING)
    real_apply = jobs.apply_remote_split

    def broken(job: SplitJob, split: Any) -> bool:
        SplitJob.objects.filter(pk=job.pk).update(progress=0.75)  # rolled back with the error
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(jobs, "apply_remote_split", broken)
    with django_capture_on_commit_callbacks(execute=True):
        failed = post(client, full_event())
    assert failed.status_code == 500
    assert failed.json() == {"received": False, "outcome": "error"}
    row = WebhookEvent.objects.get()
    assert row.outcome == WebhookEvent.Outcome.ERROR
    assert row.processed_at is None
    job.refresh_from_db()
    assert job.progress == 0.25
    assert "database hiccup" in caplog.text

    monkeypatch.setattr(jobs, "apply_remote_split", real_apply)
    with django_capture_on_commit_callbacks(execute=True):
        retried = post(client, full_event())
    assert retried.status_code == 200
    assert retried.json()["outcome"] == "processed"
    row.refresh_from_db()
    assert row.outcome == WebhookEvent.Outcome.PROCESSED
    assert row.deliveries == 2
    assert tasks.ingest_split.calls == [(str(job.pk),)]


@pytest.mark.django_db
def test_failing_signal_receiver_is_an_error_and_retried(client: Client, tasks: FakeTasks) -> None:
    make_job()

    def receiver(**kwargs: Any) -> None:
        raise ValueError("receiver bug")

    webhook_received.connect(receiver)
    try:
        response = post(client, full_event())
    finally:
        webhook_received.disconnect(receiver)
    assert response.status_code == 500
    assert WebhookEvent.objects.get().outcome == WebhookEvent.Outcome.ERROR
    assert post(client, full_event()).json()["outcome"] == "processed"


# --- concurrency -------------------------------------------------------------------


@pytest.fixture
def postgres_only() -> Iterator[None]:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's blocking unique index")
    yield


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_make_one_row_and_one_processing(
    postgres_only: None, tasks: FakeTasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two deliveries of one event at once: the second insert waits on the first.

    The first delivery is held inside its transaction until PostgreSQL shows the
    second one waiting on a lock, so the collision really happens mid-flight.
    """
    import django_aistemsplitter.jobs as jobs

    job = make_job(SplitStatus.PROCESSING)
    real_apply = jobs.apply_remote_split
    applied: list[str] = []
    release = threading.Event()

    def held_apply(job: SplitJob, split: Any) -> Any:
        applied.append(split.id)
        assert release.wait(30), "the second delivery never reached the database"
        return real_apply(job, split)

    monkeypatch.setattr(jobs, "apply_remote_split", held_apply)
    raw = encode(full_event())
    header = sign_payload(raw, SECRET)
    start = threading.Barrier(2)
    responses: list[Any] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            start.wait(10)
            responses.append(
                Client().post(
                    URL,
                    raw,
                    content_type="application/json",
                    headers={contract.SIGNATURE_HEADER: header},
                )
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    saw_wait = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE NOT l.granted AND a.datname = current_database()"
            )
            if cursor.fetchone()[0] > 0:
                saw_wait = True
                break
        time.sleep(0.01)
    release.set()
    for t in threads:
        t.join(60)
    assert errors == []
    assert saw_wait, "the second delivery did not collide with the first"
    assert sorted(r.status_code for r in responses) == [200, 200]
    assert sorted(r.json()["outcome"] for r in responses) == ["duplicate", "processed"]
    assert applied == [SPLIT_ID]
    row = WebhookEvent.objects.get()
    assert row.deliveries == 2
    assert tasks.ingest_split.calls == [(str(job.pk),)]


@pytest.mark.django_db
def test_event_before_remote_id_is_stored_finds_job_by_metadata(
    client: Client, tasks: FakeTasks, django_capture_on_commit_callbacks: Any
) -> None:
    from django_aistemsplitter.backends.hosted import job_metadata

    job = make_job(SplitStatus.PENDING, remote_id="")
    event = full_event(contract.SUCCEEDED)
    event["data"]["metadata"] = job_metadata(job)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, event)
    assert response.json()["outcome"] == "processed"
    job.refresh_from_db()
    assert job.remote_id == SPLIT_ID
    assert job.status == SplitStatus.DOWNLOADING  # the ingest is claimed and queued
    assert WebhookEvent.objects.get().job_id == job.pk
    assert tasks.ingest_split.calls == [(str(job.pk),)]


@pytest.mark.django_db
def test_metadata_never_steals_a_job_with_another_remote_id(
    client: Client, tasks: FakeTasks
) -> None:
    from django_aistemsplitter.backends.hosted import job_metadata

    job = make_job(SplitStatus.PROCESSING, remote_id="split_current")
    before = job_state(job)
    event = full_event(contract.SUCCEEDED, split_id="split_old_attempt")
    event["data"]["metadata"] = job_metadata(job)
    assert post(client, event).json()["outcome"] == "unknown_job"
    assert job_state(job) == before
    assert job.remote_id == "split_current"
    assert tasks.ingest_split.calls == []


@pytest.mark.django_db
def test_late_event_of_a_retried_attempt_does_not_touch_the_new_one(
    client: Client, tasks: FakeTasks
) -> None:
    """A failed job was retried (new key, no remote id yet); its old split's webhook is late."""
    from django_aistemsplitter.backends.hosted import JOB_METADATA_KEY, job_metadata

    job = make_job(SplitStatus.FAILED, remote_id="split_first_attempt")
    old_attempt = job_metadata(job)
    assert job.reset_for_retry()
    before = job_state(job)
    event = full_event(contract.FAILED, split_id="split_first_attempt")
    event["data"]["metadata"] = old_attempt
    assert post(client, event).json()["outcome"] == "unknown_job"
    job.refresh_from_db()
    assert job_state(job) == before
    assert job.status == SplitStatus.PENDING and job.remote_id == ""
    # Without the attempt key (an id alone) nothing is claimed either.
    event = full_event(contract.FAILED, event_id="evt_002", split_id="split_other")
    event["data"]["metadata"] = {JOB_METADATA_KEY: str(job.pk)}
    assert post(client, event).json()["outcome"] == "unknown_job"
    assert job_state(job) == before


# --- hostile input (issue 9, item 5): 4xx, never 500; signed junk is recorded once ----


def body_with(event: dict[str, Any], **data: Any) -> bytes:
    """``event`` with ``data`` fields replaced, encoded as Python's json does (NaN included)."""
    event = {**event, "data": {**event["data"], **data}}
    return json.dumps(event).encode()


def nested(depth: int) -> bytes:
    """An otherwise valid event whose metadata is a list nested ``depth`` levels deep."""
    head = json.dumps(full_event(event_id="evt_deep"))[:-1]  # without the closing brace
    return (head + ', "extra": ' + "[" * depth + "]" * depth + "}").encode()


def signed_post(client: Client, raw: bytes, **extra: Any) -> Any:
    return client.post(
        URL,
        data=raw,
        content_type="application/json",
        headers={contract.SIGNATURE_HEADER: sign_payload(raw, SECRET)},
        **extra,
    )


HOSTILE_HEADERS = {
    "400_digit_timestamp": lambda raw: f"t={'9' * 400},v1={'0' * 64}",
    "negative_timestamp": lambda raw: f"t=-{int(time.time())},v1={'0' * 64}",
    "non_ascii_v1": lambda raw: f"t={int(time.time())},v1={'é' * 64}",
    "non_ascii_timestamp": lambda raw: f"t=\uff11\uff12\uff13,v1={'0' * 64}",
    "huge_header": lambda raw: sign_payload(raw, SECRET) + ",v1=" + "a" * 100_000,
    "only_commas": lambda raw: "," * 1000,
}


@pytest.mark.reliability("webhook-malformed")
@pytest.mark.django_db
@pytest.mark.parametrize("case", sorted(HOSTILE_HEADERS))
def test_hostile_signature_headers_answer_400(
    client: Client, tasks: FakeTasks, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    job = make_job()
    before = job_state(job)
    raw = encode(full_event())
    header = HOSTILE_HEADERS[case](raw)
    response = client.post(
        URL, raw, content_type="application/json", headers={contract.SIGNATURE_HEADER: header}
    )
    assert response.status_code == 400
    assert response.json()["received"] is False
    assert 0 < len(response.json()["error"]) <= 200
    assert WebhookEvent.objects.count() == 0
    assert job_state(job) == before
    assert SECRET not in caplog.text


SIGNED_JUNK: dict[str, tuple[bytes, str | None]] = {
    # name: (body, the event id it is recorded under; None: derived from the body)
    "created_infinity": (encode({**full_event(event_id="evt_inf"), "created": 1e400}), "evt_inf"),
    "created_nan": (
        json.dumps({**full_event(event_id="evt_nan"), "created": float("nan")}).encode(),
        "evt_nan",
    ),
    "created_far_future": (
        encode({**full_event(event_id="evt_far"), "created": 10**15}),
        "evt_far",
    ),
    "created_text": (encode({**full_event(event_id="evt_txt"), "created": "yesterday"}), "evt_txt"),
    "nul_in_value": (body_with(full_event(event_id="evt_nul"), filename="a\x00b"), "evt_nul"),
    "nul_in_key": (body_with(full_event(event_id="evt_nulk"), metadata={"k\x00": 1}), "evt_nulk"),
    "nul_in_event_id": (encode(full_event(event_id="evt\x00id")), None),
    "lone_surrogate": (body_with(full_event(event_id="evt_sur"), filename="\ud800"), "evt_sur"),
    "deep_nesting": (nested(100_000), None),
    "nesting_just_below_recursion_limit": (nested(sys.getrecursionlimit() - 60), None),
    "nesting_deeper_than_storable": (nested(200), None),
    "event_id_is_a_number": (encode({**full_event(), "id": 123}), None),
    "split_id_is_a_number": (body_with(full_event(event_id="evt_sid"), id=42), "evt_sid"),
    "status_is_a_list": (body_with(full_event(event_id="evt_st"), status=["succeeded"]), "evt_st"),
    "data_is_a_list": (encode({**full_event(event_id="evt_dl"), "data": [1]}), "evt_dl"),
    "type_is_an_object": (encode({**full_event(event_id="evt_to"), "type": {"a": 1}}), "evt_to"),
    "event_id_too_long": (encode(full_event(event_id="e" * 500)), None),
    "split_id_too_long": (body_with(full_event(event_id="evt_long"), id="s" * 500), "evt_long"),
    "integer_too_long": (b'{"id": "evt_int", "created": ' + b"9" * 5000 + b"}", None),
    "not_utf8": (b'{"id": "evt_\xff\xfe", "data": {}}', None),
    "not_json": (b"\x00\x01 not json", None),
    "unclosed_json": (b"{not json", None),
    "json_array": (b"[1, 2, 3]", None),
    "no_data": (encode({"id": "evt_x", "type": "split.succeeded"}), "evt_x"),
    "no_split_id": (encode({"id": "evt_x", "type": "t", "data": {"status": "x"}}), "evt_x"),
    "no_type": (encode({"id": "evt_x", "data": {"id": SPLIT_ID, "status": "succeeded"}}), "evt_x"),
    "empty": (b"", None),
}


@pytest.mark.reliability("webhook-malformed")
@pytest.mark.django_db
@pytest.mark.parametrize("case", sorted(SIGNED_JUNK))
def test_signed_malformed_event_is_recorded_once_and_answered_200(
    client: Client,
    tasks: FakeTasks,
    case: str,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """A signed body we cannot use: one ``malformed`` row saying why; 200 so retries stop."""
    raw, event_id = SIGNED_JUNK[case]
    job = make_job()
    before = job_state(job)
    received: list[Any] = []
    webhook_received.connect(lambda **kw: received.append(kw), weak=False, dispatch_uid=case)
    try:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            first = signed_post(client, raw)
            again = signed_post(client, raw)
    finally:
        webhook_received.disconnect(dispatch_uid=case)
    for response in (first, again):
        assert response.status_code == 200, response.content
        assert response.json()["outcome"] == "malformed"
        assert 0 < len(response.json()["reason"]) <= 200
    row = WebhookEvent.objects.get()
    assert row.outcome == WebhookEvent.Outcome.MALFORMED
    assert row.deliveries == 2
    assert 0 < len(row.reason) <= 200
    assert row.reason == first.json()["reason"]
    if event_id is None:
        assert row.event_id.startswith("evt_malformed_")
    else:
        assert row.event_id == event_id
    assert set(row.payload) == {"bytes", "sha256"}  # a summary, never the body
    assert row.payload["bytes"] == len(raw)
    assert row.job_id is None
    assert job_state(job) == before
    assert callbacks == [] and received == []
    assert tasks.refresh_split.calls == tasks.ingest_split.calls == []
    assert "signed but malformed" in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.reliability("webhook-malformed")
@pytest.mark.django_db
def test_value_that_does_not_fit_the_database_is_malformed_not_500(
    client: Client, tasks: FakeTasks
) -> None:
    """A signed event whose duration makes the cost overflow its column: no retry loop."""
    job = make_job()
    before = job_state(job)
    response = signed_post(client, body_with(full_event(event_id="evt_big"), durationSeconds=1e12))
    assert response.status_code == 200
    assert response.json()["outcome"] == "malformed"
    row = WebhookEvent.objects.get()
    assert row.event_id == "evt_big"
    assert row.outcome == WebhookEvent.Outcome.MALFORMED
    assert "database" in row.reason
    assert job_state(job) == before
    assert tasks.ingest_split.calls == []


@pytest.mark.reliability("webhook-malformed")
@pytest.mark.django_db
def test_a_good_delivery_after_a_malformed_one_is_processed(
    client: Client, tasks: FakeTasks, django_capture_on_commit_callbacks: Any
) -> None:
    """The service fixed the event and sent it again under the same id: it is used."""
    job = make_job()
    assert signed_post(client, encode({**full_event(), "created": "soon"})).json()["outcome"] == (
        "malformed"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, full_event())
    assert response.json()["outcome"] == "processed"
    row = WebhookEvent.objects.get()
    assert (row.outcome, row.deliveries, row.reason) == ("processed", 2, "")
    assert row.payload["data"]["id"] == SPLIT_ID
    assert row.job_id == job.pk
    assert tasks.ingest_split.calls == [(str(job.pk),)]


@pytest.mark.reliability("webhook-audit")
@pytest.mark.django_db
def test_a_malformed_redelivery_keeps_the_processed_outcome(
    client: Client, tasks: FakeTasks
) -> None:
    make_job()
    assert post(client, full_event()).json()["outcome"] == "processed"
    response = signed_post(client, encode({**full_event(), "created": "soon"}))
    assert response.json()["outcome"] == "malformed"
    row = WebhookEvent.objects.get()
    assert (row.outcome, row.deliveries, row.reason) == ("processed", 2, "")


@pytest.mark.reliability("webhook-malformed")
@pytest.mark.django_db
def test_body_over_the_limit_is_refused_on_its_content_length(
    client: Client, tasks: FakeTasks, settings: Any
) -> None:
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "WEBHOOK_MAX_BYTES": 4096}
    job = make_job()
    before = job_state(job)
    raw = json.dumps(full_event()).encode() + b" " * 5000  # valid JSON, validly signed
    response = signed_post(client, raw)
    assert response.status_code == 413
    assert response.json() == {"received": False, "error": "body is larger than 4096 bytes"}
    assert WebhookEvent.objects.count() == 0
    assert job_state(job) == before
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "WEBHOOK_MAX_BYTES": 1024**2}
    assert signed_post(client, raw).json()["outcome"] == "processed"


class Unreadable(io.RawIOBase):
    """A request stream that must not be read."""

    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the body was read")


class Endless(io.RawIOBase):
    """A body without Content-Length that never ends; counts what was read."""

    def __init__(self) -> None:
        self.served = 0

    def read(self, size: int = -1) -> bytes:
        size = 65536 if size is None or size < 0 else min(size, 65536)
        self.served += size
        return b" " * size


@pytest.mark.reliability("webhook-malformed")
@pytest.mark.django_db
def test_body_over_the_limit_is_refused_before_and_while_reading(tasks: FakeTasks) -> None:
    from django.test import RequestFactory

    from django_aistemsplitter.backends.hosted.webhook import webhook_view

    make_job()
    factory = RequestFactory()
    # A Content-Length above the limit: answered without reading a byte.
    request = factory.post(URL, b"", content_type="application/json", CONTENT_LENGTH="10" * 10)
    request._stream = Unreadable()  # type: ignore[assignment]
    response = webhook_view(request)
    assert response.status_code == 413
    # No Content-Length (chunked): the read stops one byte past the limit.
    request = factory.post(URL, b"", content_type="application/json")
    request.META.pop("CONTENT_LENGTH", None)
    stream = Endless()
    request._stream = stream  # type: ignore[assignment]
    response = webhook_view(request)
    assert response.status_code == 413
    assert 1024**2 < stream.served <= 1024**2 + 65536
    assert WebhookEvent.objects.count() == 0


@pytest.mark.reliability("webhook-malformed")
@pytest.mark.django_db
@pytest.mark.parametrize("value", ["abc", "-5", ""])
def test_unreadable_content_length_is_not_a_500(client: Client, value: str) -> None:
    raw = encode(full_event())
    response = client.post(
        URL,
        raw,
        content_type="application/json",
        headers={contract.SIGNATURE_HEADER: sign_payload(raw, SECRET)},
        CONTENT_LENGTH=value,
    )
    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize("value", [0, -1, "1MB", None, 1.5, True])
def test_webhook_max_bytes_must_be_a_positive_integer(settings: Any, value: Any) -> None:
    from django_aistemsplitter.checks import check_webhook_body_limit

    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "WEBHOOK_MAX_BYTES": value}
    assert [m.id for m in check_webhook_body_limit()] == ["aistemsplitter.E040"]
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "WEBHOOK_MAX_BYTES": 4096}
    assert check_webhook_body_limit() == []


@pytest.mark.django_db
@pytest.mark.parametrize("value", [[SECRET, 5], [SECRET, " "], 42])
def test_a_secret_setting_of_the_wrong_shape_is_a_configuration_error(
    settings: Any, value: Any
) -> None:
    """The client's one reader of secrets decides; the value is never shown."""
    from django_aistemsplitter.backends.hosted.webhook import webhook_secrets

    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "WEBHOOK_SECRET": value}
    with pytest.raises(ConfigurationError, match="WEBHOOK_SECRET") as caught:
        webhook_secrets()
    assert SECRET not in str(caught.value)
