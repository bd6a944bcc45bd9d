"""Webhook delivery: signatures, retries, and the duplicate/drop/reorder/thin switches."""

from __future__ import annotations

from pathlib import Path

import pytest

from django_aistemsplitter import contract
from django_aistemsplitter.client.signing import verify_signature
from tests.sandbox.helpers import (
    Received,
    api,
    split_from_upload,
    stats,
    wait_for,
    wait_terminal,
    webhook_receiver,
)
from tests.sandbox_process import SandboxProcess


def assert_signed(event: Received, sandbox: SandboxProcess) -> None:
    header = event.headers.get(contract.SIGNATURE_HEADER.lower())
    verify_signature(event.body, header, sandbox.webhook_secret)


def test_succeeded_event_is_signed_and_carries_the_split(
    sandbox: SandboxProcess, wav_file: Path
) -> None:
    client = api(sandbox)
    with webhook_receiver() as receiver:
        created = split_from_upload(client, wav_file, webhookUrl=receiver.url)
        events = wait_for(lambda: receiver.events())
        done = wait_terminal(client, created["id"])
    event = events[0]
    assert_signed(event, sandbox)
    body = event.json
    assert body["id"].startswith("evt_")
    assert body["type"] == contract.EVENT_SPLIT_SUCCEEDED
    assert isinstance(body["created"], int)
    assert body["data"]["id"] == created["id"]
    assert body["data"]["status"] == "succeeded"
    assert set(body["data"]["stems"]) == set(done["stems"])
    assert event.headers["content-type"] == "application/json"


def test_a_wrong_secret_does_not_verify(sandbox: SandboxProcess, wav_file: Path) -> None:
    from django_aistemsplitter.exceptions import SignatureVerificationError

    client = api(sandbox)
    with webhook_receiver() as receiver:
        split_from_upload(client, wav_file, webhookUrl=receiver.url)
        event = wait_for(lambda: receiver.events())[0]
    with pytest.raises(SignatureVerificationError):
        verify_signature(event.body, event.headers["aistemsplitter-signature"], "whsec_other")


def test_failed_event(sandbox_factory, wav_file: Path) -> None:
    sandbox = sandbox_factory(engine="no_such_engine")
    with webhook_receiver() as receiver:
        split_from_upload(api(sandbox), wav_file, webhookUrl=receiver.url)
        event = wait_for(lambda: receiver.events())[0]
    assert_signed(event, sandbox)
    assert event.json["type"] == contract.EVENT_SPLIT_FAILED
    assert event.json["data"]["error"]["code"] == "SEPARATION_FAILED"


def test_retry_after_a_500(sandbox_factory, wav_file: Path) -> None:
    sandbox = sandbox_factory(webhook_retry_base=0.05)
    with webhook_receiver(statuses=[500, 503]) as receiver:
        split_from_upload(api(sandbox), wav_file, webhookUrl=receiver.url)
        events = wait_for(lambda: len(receiver.events()) >= 3 and receiver.events())
    assert len({e.json["id"] for e in events}) == 1
    for event in events:
        assert_signed(event, sandbox)
    counts = wait_for(lambda: (s := stats(sandbox)["webhooks"])["delivered"] == 1 and s)
    assert counts["attempted"] == 3
    assert counts["failed"] == 2


def test_retries_are_bounded(sandbox_factory, wav_file: Path) -> None:
    sandbox = sandbox_factory(webhook_retry_base=0.01, webhook_max_attempts=3)
    with webhook_receiver(statuses=[500] * 10) as receiver:
        split_from_upload(api(sandbox), wav_file, webhookUrl=receiver.url)
        counts = wait_for(lambda: (s := stats(sandbox)["webhooks"])["exhausted"] == 1 and s)
        assert len(receiver.events()) == 3
    assert counts["attempted"] == 3 and counts["delivered"] == 0


def test_unreachable_receiver_is_retried(sandbox_factory, wav_file: Path) -> None:
    from tests.sandbox_process import free_port

    sandbox = sandbox_factory(webhook_retry_base=0.01, webhook_max_attempts=2)
    url = f"http://127.0.0.1:{free_port()}/hook"
    split_from_upload(api(sandbox), wav_file, webhookUrl=url)
    counts = wait_for(lambda: (s := stats(sandbox)["webhooks"])["exhausted"] == 1 and s)
    assert counts["attempted"] == 2 and counts["failed"] == 2


def test_duplicates(sandbox_factory, wav_file: Path) -> None:
    sandbox = sandbox_factory(duplicate_webhooks=2)
    with webhook_receiver() as receiver:
        split_from_upload(api(sandbox), wav_file, webhookUrl=receiver.url)
        events = wait_for(lambda: len(receiver.events()) >= 3 and receiver.events())
    assert len(events) == 3
    assert len({e.json["id"] for e in events}) == 1
    assert len({e.body for e in events}) == 1


def test_drop(sandbox_factory, wav_file: Path) -> None:
    sandbox = sandbox_factory(drop_webhooks=True)
    with webhook_receiver() as receiver:
        split_from_upload(api(sandbox), wav_file, webhookUrl=receiver.url)
        counts = wait_for(lambda: (s := stats(sandbox)["webhooks"])["dropped"] == 1 and s)
        assert receiver.events() == []
    assert counts["attempted"] == 0


def test_reorder_releases_newest_first_and_copies_late(sandbox_factory, wav_file: Path) -> None:
    sandbox = sandbox_factory(
        reorder_webhooks=True,
        reorder_batch=3,
        reorder_window=60,
        workers=1,
        duplicate_webhooks=1,
    )
    client = api(sandbox)
    with webhook_receiver() as receiver:
        created = [
            split_from_upload(client, wav_file, webhookUrl=receiver.url)["id"] for _ in range(3)
        ]
        events = wait_for(lambda: len(receiver.events()) >= 6 and receiver.events())
    order = [e.json["data"]["id"] for e in events]
    assert order[:3] == list(reversed(created))
    assert order[3:] == list(reversed(created))


def test_reorder_window_releases_a_lone_event(sandbox_factory, wav_file: Path) -> None:
    sandbox = sandbox_factory(reorder_webhooks=True, reorder_batch=5, reorder_window=0.2)
    with webhook_receiver() as receiver:
        created = split_from_upload(api(sandbox), wav_file, webhookUrl=receiver.url)
        event = wait_for(lambda: receiver.events())[0]
    assert event.json["data"]["id"] == created["id"]


def test_thin_format(sandbox_factory, wav_file: Path) -> None:
    sandbox = sandbox_factory(webhook_format="thin")
    with webhook_receiver() as receiver:
        created = split_from_upload(api(sandbox), wav_file, webhookUrl=receiver.url)
        event = wait_for(lambda: receiver.events())[0]
    assert_signed(event, sandbox)
    assert event.json == {
        "event": contract.EVENT_SPLIT_COMPLETED,
        "data": {"id": created["id"], "status": "succeeded"},
    }


def test_no_webhook_url_sends_nothing(sandbox_factory, wav_file: Path) -> None:
    sandbox = sandbox_factory()
    client = api(sandbox)
    wait_terminal(client, split_from_upload(client, wav_file)["id"])
    assert stats(sandbox)["webhooks"]["attempted"] == 0
