"""Property-based fuzz of the webhook receiver (issue 9, item 5): 10,000 hostile requests.

Hypothesis builds requests through Django's test client, in-process, against
PostgreSQL: mutated events (wrong types, ``NaN``, NUL characters, lone
surrogates, deep nesting, long strings), other encodings, random bytes, forged,
stale, truncated and garbled signature headers, lying ``Content-Length`` headers
and bodies around the size limit. Whatever arrives:

* the answer is never a 5xx;
* a delivery that is not signed with our secret changes nothing: no row, no job
  change, nothing queued for after the commit;
* a signed one is answered 200 and adds at most one row; when it is
  ``malformed`` it touches no job;
* no secret (nor the valid signature of the body) appears in a response or a log line.

The examples of one test share its database transaction (Hypothesis runs them
inside one test function), so the properties compare before and after each
request rather than absolute counts. The requests add up to ``TOTAL_REQUESTS``
(at least 10,000); each test checks that it sent all of its requests and records
them in the reliability record (``docs/reliability.md``).
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import pytest
from django.db import connection
from django.test import Client, RequestFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_aistemsplitter import contract
from django_aistemsplitter.backends.hosted.webhook import MAX_DEPTH, webhook_view
from django_aistemsplitter.client.signing import compute_signature
from django_aistemsplitter.models import SplitJob, SplitStatus, WebhookEvent
from tests.reliability import record_reliability

pytestmark = [pytest.mark.django_db, pytest.mark.reliability("webhook-fuzz")]

URL = "/aistemsplitter/webhook/"
SECRET = "whsec_fuzz_primary_5f0c3a9e81d24b7c"
OLD_SECRET = "whsec_fuzz_rotated_0d9e4c2b7a6f1e38"
SPLIT_ID = "split_fuzz_1"
TOLERANCE = contract.SIGNATURE_TOLERANCE_SECONDS
#: Outcomes a signed delivery may be answered with (``error`` would be a 500).
OUTCOMES = {"processed", "duplicate", "ignored", "unknown_job", "malformed"}

#: Hypothesis examples per test, and the requests each example sends (drawing a
#: body costs more than sending it again with other headers).
EXAMPLES = {"unsigned": 1000, "signed": 1500, "headers": 1000, "sizes": 1000, "nesting": 1000}
REQUESTS_PER_EXAMPLE = {"unsigned": 3, "signed": 2, "headers": 2, "sizes": 1, "nesting": 1}
TOTAL_REQUESTS = sum(n * REQUESTS_PER_EXAMPLE[name] for name, n in EXAMPLES.items())
assert TOTAL_REQUESTS >= 10_000


SNAPSHOT_SQL = (
    f"SELECT (SELECT count(*) FROM {WebhookEvent._meta.db_table}), "
    f"status, progress, error_code, remote_id, attempts, updated_at "
    f"FROM {SplitJob._meta.db_table} WHERE id = %s"
)


def fuzz_settings(name: str) -> settings:
    return settings(
        max_examples=EXAMPLES[name],
        deadline=None,  # no timed assertions: the machine may be busy
        database=None,  # nothing written to the working tree; print_blob reproduces
        print_blob=True,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,  # the shared transaction is intended
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


# --- the receiver under test, and the checks made after every request -------------------


@dataclass
class Target:
    client: Client
    caplog: pytest.LogCaptureFixture
    job: SplitJob
    settings: Any
    sent: int = 0
    seen_outcomes: set[str] = field(default_factory=set)

    def snapshot(self) -> tuple[Any, ...]:
        """Everything a request could change: rows, the job, work queued for commit.

        One query (it runs twice per example): the number of rows, then the job.
        """
        with connection.cursor() as cursor:
            cursor.execute(SNAPSHOT_SQL, [self.job.pk])
            rows, *job = cursor.fetchone()
        return (rows, tuple(job), len(connection.run_on_commit))

    def post(
        self,
        body: bytes,
        headers: dict[str, str],
        content_type: str = "application/json",
        **extra: Any,
    ) -> Any:
        self.caplog.clear()
        response = self.client.generic(
            "POST", URL, body, content_type=content_type, headers=headers, **extra
        )
        self.check(response, body)
        return response

    def call_view(self, body_stream: BinaryIO, headers: dict[str, str]) -> Any:
        """The view without a Content-Length (a chunked body), on a stream."""
        self.caplog.clear()
        request = RequestFactory().post(URL, b"", content_type="application/json", headers=headers)
        request.META.pop("CONTENT_LENGTH", None)
        request._stream = body_stream
        response = webhook_view(request)
        self.check(response, b"")
        return response

    def check(self, response: Any, body: bytes) -> None:
        self.sent += 1
        assert response.status_code < 500, response.content[:500]
        text = self.caplog.text
        for secret in (SECRET, OLD_SECRET, compute_signature(body, SECRET, int(time.time()))):
            assert secret not in text
            assert secret.encode() not in response.content

    def refused(self, response: Any, before: tuple[Any, ...]) -> None:
        """An unsigned or invalid delivery: 400/413 and no state change at all."""
        assert response.status_code in (400, 413), response.content[:500]
        assert json.loads(response.content)["received"] is False
        assert self.snapshot() == before

    def accepted(self, response: Any, before: tuple[Any, ...]) -> str:
        """A signed delivery: 200, a known outcome, at most one new row."""
        assert response.status_code == 200, response.content[:500]
        outcome = json.loads(response.content)["outcome"]
        assert outcome in OUTCOMES
        after = self.snapshot()
        assert after[0] - before[0] in (0, 1)
        if outcome in ("malformed", "duplicate"):
            assert after[1:] == before[1:], "a malformed or duplicate delivery touched a job"
        self.seen_outcomes.add(outcome)
        return outcome


@pytest.fixture
def target(
    client: Client,
    caplog: pytest.LogCaptureFixture,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Target]:
    monkeypatch.delenv(contract.WEBHOOK_SECRET_ENV, raising=False)
    settings.AISTEMSPLITTER = {
        "BACKEND": "hosted",
        "API_KEY": "ast_test_key",
        "WEBHOOK_SECRET": [SECRET, OLD_SECRET],
        "WEBHOOK_BASE_URL": "https://app.example.com",
    }
    caplog.set_level(logging.DEBUG)
    job = SplitJob.objects.create(
        stem_model="htdemucs_ft",
        backend="hosted",
        remote_id=SPLIT_ID,
        status=SplitStatus.PROCESSING,
        source_url="https://example.com/song.mp3",
        progress=0.25,
    )
    yield Target(client, caplog, job, settings)


def sign(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    return f"t={ts},v1={compute_signature(body, secret, ts)}"


# --- strategies ---------------------------------------------------------------------------

#: Text that includes what PostgreSQL and JSON find hard: NUL, surrogates, RTL, emoji.
#: (Strategies are kept small: Hypothesis' cost grows with the choices it makes,
#: and 10,000 examples must stay quick.)
nasty_text = st.sampled_from(
    ["", "\x00", "a\x00b", "\ud800", "\udfff", "é", "\u202e", "🎵", "   ", "x" * 300]
) | st.text(max_size=12)
NON_FINITE = (float("inf"), float("-inf"), float("nan"))
#: Numbers at the edges: huge, tiny, negative, non-finite, beyond 64 bits.
edge_numbers = st.sampled_from(
    [0, -1, 0.5, 180.0, 3600, 10**6, 1e12, 1e300, -1e300, 1e-300, 2**63, 10**100, -0.0, *NON_FINITE]
)
json_scalars = st.none() | st.booleans() | edge_numbers | st.integers() | nasty_text
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(nasty_text, children, max_size=3)
    ),
    max_leaves=6,
)
statuses = st.sampled_from([*contract.STATUSES, "weird", ""]) | nasty_text
split_ids = st.sampled_from([SPLIT_ID, "split_other", ""]) | nasty_text
event_ids = st.sampled_from(["evt_a", "evt_b", "evt_c"]) | nasty_text | st.none()
stem_maps = st.sampled_from(
    [{}, {s: f"https://cdn.example.com/{s}.wav" for s in contract.FOUR_STEMS}, {"../x": "y"}]
)
errors = st.sampled_from([None, {"code": "UNSUPPORTED_AUDIO", "message": "no"}, {"code": 5}])


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """An event of either shape, then a few of its fields replaced by anything."""
    status = draw(statuses)
    data: dict[str, Any] = {"id": draw(split_ids), "status": status}
    if draw(st.booleans()):
        event: dict[str, Any] = {"event": contract.EVENT_SPLIT_COMPLETED, "data": data}
    else:
        data.update(
            stemModel="htdemucs_ft",
            durationSeconds=draw(edge_numbers),
            creditsUsed=draw(edge_numbers),
            progress=draw(edge_numbers),
            stems=draw(stem_maps),
            error=draw(errors),
            metadata={},
        )
        event = {
            "id": draw(event_ids),
            "type": f"split.{status}",
            "created": int(time.time()),
            "data": data,
        }
    for _ in range(draw(st.integers(0, 2))):
        where = event if draw(st.booleans()) else data
        key = draw(st.sampled_from([*where.keys(), "extra"]))
        if draw(st.integers(0, 4)) == 0:
            where.pop(key, None)
        else:
            where[key] = draw(json_values)
    return event


@st.composite
def encoded(draw: st.DrawFn, value: Any) -> bytes:
    """``value`` as JSON bytes, in one of the encodings JSON parsers meet."""
    text = json.dumps(value, ensure_ascii=draw(st.booleans()), allow_nan=True)
    codec = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "utf-16", "utf-32"]))
    return text.encode(codec, "surrogatepass")


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """Mostly JSON events; also any JSON, raw bytes and damaged JSON."""
    kind = draw(st.integers(0, 9))
    if kind < 6:
        return draw(encoded(draw(events())))
    if kind < 7:
        return draw(encoded(draw(json_values)))
    if kind < 8:
        return draw(st.binary(max_size=300))
    raw = draw(encoded(draw(events())))
    cut = draw(st.integers(0, len(raw)))
    return raw[:cut] + draw(st.binary(max_size=8)) + raw[cut:]


timestamps = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.just("9" * 400),
    st.text(max_size=15),
    st.sampled_from(["", "-1", "0", "1e9", " 1", "\uff11\uff12\uff13", "0x10", "nan"]),
)
signature_texts = st.one_of(
    st.text(alphabet="0123456789abcdefABCDEF", max_size=70),
    st.text(max_size=70),
    st.just("é" * 64),
)


@st.composite
def forged_headers(draw: st.DrawFn, body: bytes) -> dict[str, str]:
    """Headers that must not be accepted for ``body``."""
    now = int(time.time())
    kind = draw(st.integers(0, 7))
    if kind == 0:
        return {}
    if kind == 1:
        value = draw(st.text(max_size=200))
    elif kind == 2:
        value = f"t={draw(timestamps)},v1={draw(signature_texts)}"
    elif kind == 3:
        value = sign(body, draw(st.sampled_from(["whsec_other", SECRET + "x", SECRET[:-1], ""])))
    elif kind == 4:
        skew = draw(st.integers(TOLERANCE + 1, 10**9)) * draw(st.sampled_from([-1, 1]))
        value = sign(body, SECRET, now + skew)
    elif kind == 5:
        other = body + draw(st.binary(min_size=1, max_size=4))
        value = sign(other, SECRET)
    elif kind == 6:
        good = sign(body, SECRET)
        value = good.replace("t=", draw(st.sampled_from(["T=", "t ", "x=", "t=x"])), 1)
    else:
        good = sign(body, SECRET)
        position = draw(st.integers(0, len(good) - 1))
        flipped = chr((ord(good[position]) + draw(st.integers(1, 60))) % 128)
        value = good[:position] + flipped + good[position + 1 :]
        if value == good:
            value = ""
    name = draw(
        st.sampled_from(
            [contract.SIGNATURE_HEADER, contract.SIGNATURE_HEADER.lower(), "X-Signature"]
        )
    )
    return {name: value}


content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-16",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "",
    ]
)


# --- the properties ---------------------------------------------------------------------


def finish(name: str, target: Target) -> None:
    """Every example ran (none was skipped or filtered out); count them in the record."""
    expected = EXAMPLES[name] * REQUESTS_PER_EXAMPLE[name]
    assert target.sent >= expected, f"only {target.sent} of {expected} requests were sent"
    record_reliability("webhook-fuzz", requests=target.sent)


def test_unsigned_or_forged_requests_change_nothing(target: Target) -> None:
    @fuzz_settings("unsigned")
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        body = data.draw(bodies(), label="body")
        for _ in range(REQUESTS_PER_EXAMPLE["unsigned"]):
            headers = data.draw(forged_headers(body), label="headers")
            before = target.snapshot()
            response = target.post(body, headers, content_type=data.draw(content_types))
            target.refused(response, before)

    run()
    finish("unsigned", target)


def test_signed_requests_are_answered_200_and_recorded_at_most_once(target: Target) -> None:
    """Each body is sent with a forged header (refused), then signed (accepted)."""

    @fuzz_settings("signed")
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        body = data.draw(bodies(), label="body")
        content_type = data.draw(content_types)
        before = target.snapshot()
        forged = target.post(body, data.draw(forged_headers(body)), content_type=content_type)
        target.refused(forged, before)
        secret = data.draw(st.sampled_from([SECRET, OLD_SECRET]))
        skew = data.draw(st.integers(-TOLERANCE + 5, TOLERANCE - 5))
        headers = {contract.SIGNATURE_HEADER: sign(body, secret, int(time.time()) + skew)}
        target.accepted(target.post(body, headers, content_type=content_type), before)

    run()
    finish("signed", target)
    # The bodies reached every way through the receiver, not just the refusals.
    assert {"malformed", "processed", "unknown_job", "duplicate"} <= target.seen_outcomes


header_entries = st.one_of(
    st.just(("t", "now")),
    st.tuples(st.just("t"), timestamps),
    st.just(("v1", "good")),
    st.just(("v1", "good_upper")),
    st.just(("v1", "old_good")),
    st.tuples(st.just("v1"), signature_texts),
    st.tuples(st.text(max_size=6), st.text(max_size=20)),
    st.tuples(st.text(max_size=12), st.none()),
)


def test_signature_headers_accept_only_a_correct_signature(target: Target) -> None:
    @fuzz_settings("headers")
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        body = data.draw(encoded(data.draw(events())), label="body")
        now = int(time.time())
        good = {s: compute_signature(body, s, now) for s in (SECRET, OLD_SECRET)}
        parts = []
        for key, value in data.draw(st.lists(header_entries, max_size=8), label="entries"):
            value = (
                {
                    "now": str(now),
                    "good": good[SECRET],
                    "good_upper": good[SECRET].upper(),
                    "old_good": good[OLD_SECRET],
                }.get(value, value)
                if value is not None
                else None
            )
            parts.append(key if value is None else f"{key}={value}")
        header = data.draw(st.sampled_from([",", ", ", " , "])).join(parts)
        before = target.snapshot()
        response = target.post(body, {contract.SIGNATURE_HEADER: header})
        if response.status_code == 200:
            # Never accepted without the body's signature under one of our secrets.
            assert any(g in header.lower() for g in good.values()), header
            target.accepted(response, before)
        else:
            target.refused(response, before)
        # The same body with its own signature beside the junk entries (but no
        # other timestamp, which would be refused): accepted.
        junk = [p for p in header.split(",") if p.partition("=")[0].strip() != "t"]
        header = ",".join([*junk, f"t={now}", f"v1={good[SECRET]}"])
        before = target.snapshot()
        target.accepted(target.post(body, {contract.SIGNATURE_HEADER: header}), before)

    run()
    finish("headers", target)


def test_sizes_and_content_lengths(target: Target) -> None:
    # Changed in place: every assignment to ``settings.X`` would stack one more
    # override_settings for the rest of the test.
    config = target.settings.AISTEMSPLITTER
    counter = iter(range(10**9))

    @fuzz_settings("sizes")
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        limit = data.draw(st.integers(100, 4096), label="limit")
        config["WEBHOOK_MAX_BYTES"] = limit
        event = {
            "id": f"evt_size_{next(counter):09d}",
            "type": "split.processing",
            "created": int(time.time()),
            "data": {"id": "split_size", "status": "processing"},
        }
        raw = json.dumps(event).encode()
        size = data.draw(st.integers(limit - 60, limit + 60), label="size")
        body = raw + b" " * max(0, size - len(raw))
        signed = data.draw(st.booleans(), label="signed")
        headers = {contract.SIGNATURE_HEADER: sign(body) if signed else sign(body, "whsec_x")}
        mode = data.draw(st.sampled_from(["honest", "bigger", "smaller", "junk", "chunked"]))
        before = target.snapshot()
        if mode == "chunked":
            response = target.call_view(io.BytesIO(body), headers)
            expected = 413 if len(body) > limit else (200 if signed else 400)
        elif mode == "honest":
            response = target.post(body, headers)
            expected = 413 if len(body) > limit else (200 if signed else 400)
        elif mode == "bigger":
            claimed = limit + data.draw(st.integers(1, 10**15))
            response = target.post(body, headers, CONTENT_LENGTH=str(claimed))
            expected = 413
        elif mode == "smaller":
            claimed = data.draw(st.integers(0, len(body) - 1))
            response = target.post(body, headers, CONTENT_LENGTH=str(claimed))
            expected = 413 if claimed > limit else 400
        else:
            junk = data.draw(st.sampled_from(["abc", "-5", "", " ", "1e3", "\uff10", "0x10"]))
            response = target.post(body, headers, CONTENT_LENGTH=junk)
            expected = 400
        assert response.status_code == expected, (mode, len(body), limit, response.content)
        if expected == 200:
            target.accepted(response, before)
        else:
            target.refused(response, before)

    run()
    finish("sizes", target)


def storable(text: str) -> bool:
    """Whether ``text`` can be a split id: not empty, fits its column, no NUL, no surrogate."""
    return (
        0 < len(text) <= 128
        and "\x00" not in text
        and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)
    )


def nested_text(depth: int, kinds: str) -> str:
    opening = "".join("[" if kinds[i % len(kinds)] == "l" else '{"k":' for i in range(depth))
    closing = "".join("]" if kinds[i % len(kinds)] == "l" else "}" for i in reversed(range(depth)))
    return opening + "0" + closing if depth else "0"


def test_nesting_is_refused_past_the_storable_depth_only(target: Target) -> None:
    counter = iter(range(10**9))

    @fuzz_settings("nesting")
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        depth = data.draw(
            st.one_of(
                st.integers(0, MAX_DEPTH + 8),
                st.integers(0, 5000),
                st.sampled_from([MAX_DEPTH - 2, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1]),
            ),
            label="depth",
        )
        kinds = data.draw(st.sampled_from(["l", "d", "ld", "dll"]))
        split_id = data.draw(split_ids)
        event = {
            "id": f"evt_nest_{next(counter):09d}",
            "type": "split.processing",
            "created": int(time.time()),
            "data": {"id": split_id, "status": "processing", "metadata": {}},
        }
        text = json.dumps(event)[:-1] + ', "extra": ' + nested_text(depth, kinds) + "}"
        codec = data.draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32"]))
        body = text.encode(codec, "surrogatepass")
        before = target.snapshot()
        response = target.post(body, {contract.SIGNATURE_HEADER: sign(body)})
        outcome = target.accepted(response, before)
        # Refused exactly when too deep to store, or when the split id is unusable.
        too_deep = 1 + depth > MAX_DEPTH
        assert (outcome == "malformed") == (too_deep or not storable(split_id)), (
            depth,
            split_id,
            response.content,
        )

    run()
    finish("nesting", target)
