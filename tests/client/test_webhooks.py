"""verify_webhook on both clients: signatures, rotation and the two event shapes."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from django_aistemsplitter import contract
from django_aistemsplitter.client import (
    AiStemSplitter,
    AsyncAiStemSplitter,
    ConfigurationError,
    SignatureVerificationError,
    sign_payload,
    verify_signature,
)
from django_aistemsplitter.client.types import derived_event_id

SECRET = "whsec_current"
OLD = "whsec_previous"

SPLIT = {
    "id": "split_1",
    "status": "succeeded",
    "stemModel": "htdemucs_ft",
    "progress": 1.0,
    "createdAt": "2025-01-01T00:00:00Z",
    "stems": {"vocals": "https://x/vocals.wav", "drums": "https://x/drums.wav"},
    "error": None,
}
SEED_EVENT = {"id": "evt_1", "type": "split.succeeded", "created": 1700000000, "data": SPLIT}
THIN_EVENT = {"event": "audio.split.completed", "data": {"id": "split_1", "status": "succeeded"}}


@pytest.fixture(params=[AiStemSplitter, AsyncAiStemSplitter])
def client_cls(request: pytest.FixtureRequest) -> Any:
    return request.param


def body_of(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def signed(body: bytes, secret: Any = SECRET, timestamp: int | None = None) -> dict[str, str]:
    return {contract.SIGNATURE_HEADER: sign_payload(body, secret, timestamp)}


def test_seed_event_is_verified_and_parsed(client_cls: Any) -> None:
    client = client_cls("k", webhook_secret=SECRET)
    body = body_of(SEED_EVENT)
    event = client.verify_webhook(signed(body), body)
    assert event.id == "evt_1"
    assert event.type == contract.EVENT_SPLIT_SUCCEEDED
    assert event.created == 1700000000
    assert event.data.id == "split_1" and event.data.succeeded
    assert event.data.stems["vocals"] == "https://x/vocals.wav"
    assert not event.is_thin and not event.needs_fetch
    assert event.raw == SEED_EVENT


def test_thin_event_gets_a_deterministic_id_and_asks_for_a_fetch(client_cls: Any) -> None:
    client = client_cls("k", webhook_secret=SECRET)
    body = body_of(THIN_EVENT)
    first = client.verify_webhook(signed(body), body)
    again = client.verify_webhook(signed(body_of(dict(THIN_EVENT))), body_of(dict(THIN_EVENT)))
    assert first.is_thin and first.needs_fetch
    assert first.type == contract.EVENT_SPLIT_COMPLETED
    assert first.split_id == "split_1" and first.status == "succeeded"
    assert first.id == again.id == derived_event_id("split_1", "succeeded")
    assert first.id != derived_event_id("split_1", "failed")
    assert first.created is not None and abs(first.created - time.time()) < 60


def test_header_lookup_is_case_insensitive_and_understands_meta(client_cls: Any) -> None:
    client = client_cls("k", webhook_secret=SECRET)
    body = body_of(SEED_EVENT)
    value = sign_payload(body, SECRET)
    for headers in (
        {"aistemsplitter-signature": value},
        {"AISTEMSPLITTER-SIGNATURE": value},
        {"HTTP_AISTEMSPLITTER_SIGNATURE": value, "CONTENT_TYPE": "application/json"},
    ):
        assert client.verify_webhook(headers, body).id == "evt_1"


def test_str_body_is_accepted(client_cls: Any) -> None:
    client = client_cls("k", webhook_secret=SECRET)
    body = body_of(SEED_EVENT)
    assert client.verify_webhook(signed(body), body.decode()).id == "evt_1"


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("wrong_secret", "does not match"),
        ("tampered", "does not match"),
        ("stale", "tolerance"),
        ("future", "tolerance"),
        ("missing", "missing"),
        ("garbage", "timestamp"),
        ("no_v1", "no v1"),
    ],
)
def test_bad_signatures_are_refused(client_cls: Any, case: str, match: str) -> None:
    client = client_cls("k", webhook_secret=SECRET)
    body = body_of(SEED_EVENT)
    now = int(time.time())
    headers = {
        "wrong_secret": signed(body, "whsec_other"),
        "tampered": signed(body),
        "stale": signed(body, timestamp=now - 301),
        "future": signed(body, timestamp=now + 301),
        "missing": {},
        "garbage": {contract.SIGNATURE_HEADER: "t=abc,v1=00"},
        "no_v1": {contract.SIGNATURE_HEADER: f"t={now}"},
    }[case]
    payload = body.replace(b"split_1", b"split_2") if case == "tampered" else body
    with pytest.raises(SignatureVerificationError, match=match):
        client.verify_webhook(headers, payload)


def test_tolerance_can_be_widened(client_cls: Any) -> None:
    client = client_cls("k", webhook_secret=SECRET)
    body = body_of(SEED_EVENT)
    headers = signed(body, timestamp=int(time.time()) - 1000)
    assert client.verify_webhook(headers, body, tolerance=2000).id == "evt_1"


def test_rotation_with_two_v1_entries(client_cls: Any) -> None:
    body = body_of(SEED_EVENT)
    headers = signed(body, [OLD, SECRET])
    assert headers[contract.SIGNATURE_HEADER].count("v1=") == 2
    assert client_cls("k", webhook_secret=SECRET).verify_webhook(headers, body).id == "evt_1"
    assert client_cls("k", webhook_secret=OLD).verify_webhook(headers, body).id == "evt_1"
    with pytest.raises(SignatureVerificationError):
        client_cls("k", webhook_secret="whsec_neither").verify_webhook(headers, body)


def test_rotation_with_a_list_of_secrets(client_cls: Any) -> None:
    body = body_of(SEED_EVENT)
    client = client_cls("k", webhook_secret=[SECRET, OLD])
    assert client.verify_webhook(signed(body, OLD), body).id == "evt_1"
    assert client.verify_webhook(signed(body, SECRET), body).id == "evt_1"


def test_secrets_from_the_environment(client_cls: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contract.WEBHOOK_SECRET_ENV, f"{SECRET}, {OLD}")
    client = client_cls("k")
    body = body_of(SEED_EVENT)
    assert client.verify_webhook(signed(body, OLD), body).id == "evt_1"


def test_no_secret_is_a_configuration_error(
    client_cls: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(contract.WEBHOOK_SECRET_ENV, raising=False)
    body = body_of(SEED_EVENT)
    with pytest.raises(ConfigurationError, match=contract.WEBHOOK_SECRET_ENV):
        client_cls("k").verify_webhook(signed(body), body)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"id": "evt_1"}', b'{"data": {}}'])
def test_signed_but_malformed_bodies_are_refused(client_cls: Any, body: bytes) -> None:
    client = client_cls("k", webhook_secret=SECRET)
    with pytest.raises(SignatureVerificationError):
        client.verify_webhook(signed(body), body)


def test_module_level_verify_signature() -> None:
    body = b'{"x": 1}'
    header = sign_payload(body, SECRET, timestamp=1000)
    assert verify_signature(body, header, SECRET, tolerance=None) == 1000
    with pytest.raises(SignatureVerificationError):
        verify_signature(body, header, SECRET)  # stale with the default tolerance
    with pytest.raises(SignatureVerificationError):
        verify_signature(body, header, "", tolerance=None)
