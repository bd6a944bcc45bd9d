"""Hostile webhook input: the signing and event parsing raise their documented errors only.

Whatever arrives (a 400-digit timestamp, a non-ASCII ``v1=``, ``NaN`` in a signed
body, NUL bytes, 50,000 levels of nesting), ``verify_signature`` raises
:class:`SignatureVerificationError` and ``parse_event`` raises
:class:`MalformedWebhookError` (a subclass of it), so a receiver that catches
them answers 400 and never 500. Also the one parser of configured secrets.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest

from django_aistemsplitter import contract
from django_aistemsplitter.client import (
    AiStemSplitter,
    ConfigurationError,
    MalformedWebhookError,
    SignatureVerificationError,
    parse_event,
    parse_secrets,
    sign_payload,
    verify_signature,
)

SECRET = "whsec_hostile_test"
EVENT: dict[str, Any] = {
    "id": "evt_1",
    "type": "split.succeeded",
    "created": 1700000000,
    "data": {"id": "split_1", "status": "succeeded", "stems": {"vocals": "https://x/v.wav"}},
}
GOOD = json.dumps(EVENT).encode()


# --- the one parser of configured secrets -----------------------------------------------


@pytest.mark.parametrize(
    ("value", "split_commas", "expected"),
    [
        (None, True, ()),
        ("", False, ()),
        ("  ", True, ()),
        (" a ", False, ("a",)),
        ("a, b,,", True, ("a", "b")),
        ("a,b", False, ("a,b",)),  # an explicit string is one secret, commas and all
        (["a", " b "], False, ("a", "b")),
        (("a",), True, ("a",)),  # a list is never split on commas
        ([], False, ()),
    ],
)
def test_parse_secrets(value: Any, split_commas: bool, expected: tuple[str, ...]) -> None:
    assert parse_secrets(value, split_commas=split_commas) == expected


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (42, TypeError, "not a int"),
        (b"whsec_bytes", TypeError, "not a bytes"),
        ({"whsec_set"}, TypeError, "not a set"),
        (["whsec_ok", 7], TypeError, "#2 is a int"),
        (["whsec_ok", " "], ValueError, "#2 is empty"),
    ],
)
def test_parse_secrets_refuses_other_types_without_showing_them(
    value: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match) as caught:
        parse_secrets(value, split_commas=False)
    assert "whsec_" not in str(caught.value)


def test_the_client_reports_bad_secrets_as_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="webhook_secret"):
        AiStemSplitter("k", webhook_secret=42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="#2 is empty"):
        AiStemSplitter("k", webhook_secret=["whsec_ok", ""])


# --- signature headers ------------------------------------------------------------------


def _header(timestamp: str, signature: str) -> str:
    return f"t={timestamp},v1={signature}"


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (_header("9" * 400, "0" * 64), "not a unix time"),
        (_header("1" * 5000, "0" * 64), "too long"),
        (_header("-1700000000", "0" * 64), "not a unix time"),
        (_header("1.7e9", "0" * 64), "not a unix time"),
        (_header("\u0661\u0667" + "\u0660" * 8, "0" * 64), "not a unix time"),  # Arabic-Indic
        (_header(str(int(time.time())), "é" * 64), "no v1"),
        (_header(str(int(time.time())), "\udcff" * 64), "no v1"),  # undecodable WSGI bytes
        (_header(str(int(time.time())), "g" * 64), "no v1"),
        (_header(str(int(time.time())), "0" * 63), "no v1"),
        (f"t={int(time.time())},v1={'0' * 64}\x00", "no v1"),
        ("t=\x00,v1=00", "not a unix time"),
        ("v1=" + "0" * 64, "no timestamp"),
        ("," * 10_000, "too long"),
        ("garbage", "no timestamp"),
    ],
)
def test_hostile_signature_headers(header: str, match: str) -> None:
    with pytest.raises(SignatureVerificationError, match=match):
        verify_signature(GOOD, header, SECRET)


def test_a_valid_signature_beside_garbage_entries_still_verifies() -> None:
    header = sign_payload(GOOD, SECRET) + ",v1=" + "é" * 64 + ",v1=zz,x=1,novalue"
    assert verify_signature(GOOD, header, SECRET) > 0


# --- signed bodies that are not events ----------------------------------------------------


def _with(**changes: Any) -> bytes:
    return json.dumps({**EVENT, **changes}).encode()


NESTED = b'{"id":"evt_1","type":"t","data":{"id":"s","status":"queued"},"x":' + (
    b"[" * 50_000 + b"]" * 50_000 + b"}"
)

MALFORMED = {
    "created-infinity": GOOD.replace(b"1700000000", b"Infinity"),
    "created-nan": GOOD.replace(b"1700000000", b"NaN"),
    "created-minus-infinity": GOOD.replace(b"1700000000", b"-Infinity"),
    "created-overflow": GOOD.replace(b"1700000000", b"1e400"),
    "created-huge-int": GOOD.replace(b"1700000000", b"9" * 5000),
    "created-negative": _with(created=-5),
    "created-far-future": _with(created=10**15),
    "created-text": _with(created="yesterday"),
    "created-bool": _with(created=True),
    "nul-in-id": _with(id="evt\u0000"),
    "nul-in-key": _with(data={**EVENT["data"], "x\u0000": 1}),
    "nul-deep": _with(data={**EVENT["data"], "metadata": {"a": [["\u0000"]]}}),
    "lone-surrogate": GOOD.replace(b"evt_1", b"evt_\\ud800"),
    "nested-50000": NESTED,
    "nested-top": b"[" * 50_000 + b"]" * 50_000,
    "not-utf8": b'{"id": "\xff\xfe"}',
    "empty": b"",
    "not-json": b"<html>",
    "list": b"[1, 2]",
    "no-data": _with(data=None),
    "no-split-id": _with(data={"status": "succeeded"}),
    "split-id-number": _with(data={"id": 5, "status": "succeeded"}),
    "no-type": json.dumps({"id": "e", "data": EVENT["data"]}).encode(),
    "type-number": _with(type=7),
    "id-object": _with(id={"a": 1}),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_signed_but_malformed_bodies_raise_malformed_webhook_error(body: bytes) -> None:
    with pytest.raises(MalformedWebhookError):
        parse_event(body)
    # Through the client too: signature first (it matches), then the same parser.
    client = AiStemSplitter("k", webhook_secret=SECRET)
    headers = {contract.SIGNATURE_HEADER: sign_payload(body, SECRET)}
    with pytest.raises(MalformedWebhookError) as caught:
        client.verify_webhook(headers, body)
    assert isinstance(caught.value, SignatureVerificationError)  # one except answers 400


def test_parse_event_reads_both_shapes() -> None:
    event = parse_event(GOOD)
    assert (event.id, event.type, event.created, event.data.id) == (
        "evt_1",
        "split.succeeded",
        1700000000,
        "split_1",
    )
    thin = parse_event(
        b'{"event": "audio.split.completed", "data": {"id": "s", "status": "failed"}}',
        signed_at=123,
    )
    assert thin.is_thin and thin.created == 123 and thin.type == "audio.split.completed"
    # Junk in optional split fields is dropped, not raised: the event stays readable.
    odd = parse_event(
        _with(data={**EVENT["data"], "progress": "x", "createdAt": 1e300, "stemModel": 4})
    )
    assert odd.data.progress is None and odd.data.created_at is None
    assert odd.data.stem_model is None


def test_mutated_deliveries_raise_only_documented_errors() -> None:
    """A few thousand random mutations of a signed delivery: verified, refused, never a crash."""
    rng = random.Random(20240613)
    now = int(time.time())
    header = sign_payload(GOOD, SECRET, now)
    pieces = [b"\x00", b"\xff", b"\\u0000", b"NaN", b"[" * 300, b'"', b"}", b"1e999", b"\\ud800"]
    outcomes = {"verified": 0, "signature": 0, "malformed": 0}
    for _ in range(3000):
        body = bytearray(GOOD)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(body) + 1)
            choice = rng.random()
            if choice < 0.4:
                body[at:at] = rng.choice(pieces)
            elif choice < 0.7 and body:
                body[at % len(body)] = rng.randrange(256)
            else:
                del body[at : at + rng.randint(1, 8)]
        mutated = bytes(body)
        signed = rng.random() < 0.8
        value = sign_payload(mutated, SECRET, now) if signed else header[: rng.randrange(80)]
        try:
            verify_signature(mutated, value, SECRET)
            parse_event(mutated, signed_at=now)
            outcomes["verified"] += 1
        except MalformedWebhookError:
            outcomes["malformed"] += 1
        except SignatureVerificationError:
            outcomes["signature"] += 1
    assert all(outcomes.values()), outcomes  # every branch was exercised
