"""The signed URLs as a browser uses them: CORS preflight and headers, byte ranges.

A web page uploads straight to ``uploadUrl`` and our ranged reader (and a player)
fetches parts of ``audioUrl``: cross-origin requests, which the sandbox must
allow on the signed routes only, and answer with 206 partial content.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_wav
from tests.sandbox.helpers import api, assert_error, split_from_upload, upload, wait_terminal
from tests.sandbox_process import SandboxProcess

ORIGIN = "https://app.example.com"


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    return make_wav(tmp_path / "song.wav", seconds=1.0)


@pytest.fixture
def uploaded(sandbox: SandboxProcess, wav: Path) -> dict[str, Any]:
    return upload(api(sandbox), wav)


def preflight(url: str, method: str, headers: str = "content-type") -> httpx.Response:
    return httpx.options(
        url,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


def test_the_upload_url_answers_a_browser_preflight(sandbox: SandboxProcess, wav: Path) -> None:
    data = (
        api(sandbox)
        .post("/audio/uploads", json={"filename": "song.wav", "contentType": "audio/wav"})
        .json()["data"]
    )
    answer = preflight(data["uploadUrl"], "PUT", "content-type, x-custom-thing")
    assert answer.status_code == 204
    assert answer.content == b""
    assert answer.headers["access-control-allow-origin"] == "*"
    methods = {m.strip() for m in answer.headers["access-control-allow-methods"].split(",")}
    assert {"PUT", "POST", "OPTIONS"} <= methods
    allowed = {h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "x-custom-thing", "range"} <= allowed
    assert int(answer.headers["access-control-max-age"]) > 0
    # The upload itself then carries the origin permission too.
    put = httpx.put(
        data["uploadUrl"],
        content=wav.read_bytes(),
        headers={**data["uploadHeaders"], "Origin": ORIGIN},
    )
    assert put.status_code == 200, put.text
    assert put.headers["access-control-allow-origin"] == "*"
    assert "content-range" in put.headers["access-control-expose-headers"].lower()


def test_a_refused_upload_is_readable_by_the_page(sandbox: SandboxProcess, wav: Path) -> None:
    data = (
        api(sandbox)
        .post(
            "/audio/uploads",
            json={"filename": "song.wav", "contentLength": wav.stat().st_size - 1},
        )
        .json()["data"]
    )
    too_big = httpx.put(data["uploadUrl"], content=wav.read_bytes(), headers={"Origin": ORIGIN})
    assert_error(too_big, 413, "PAYLOAD_TOO_LARGE")
    assert too_big.headers["access-control-allow-origin"] == "*"


def test_the_audio_url_answers_a_preflight_for_ranges(uploaded: dict[str, Any]) -> None:
    answer = preflight(uploaded["audioUrl"], "GET", "range")
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-methods"].startswith("GET")
    assert "range" in answer.headers["access-control-allow-headers"].lower()


def test_the_api_gets_no_cors(sandbox: SandboxProcess) -> None:
    """The bearer-key API is for servers: no preflight passes, no answer is shareable."""
    answer = preflight(f"{sandbox.base_url}/audio/splits", "POST", "authorization")
    assert answer.status_code == 404
    assert "access-control-allow-origin" not in answer.headers
    credits = api(sandbox).get("/credits", headers={"Origin": ORIGIN})
    assert credits.status_code == 200
    assert "access-control-allow-origin" not in credits.headers


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=0-0", 0, 0), ("bytes=100-199", 100, 199), ("bytes=1000-", 1000, None)],
)
def test_the_audio_url_serves_byte_ranges(
    uploaded: dict[str, Any], wav: Path, header: str, first: int, last: int | None
) -> None:
    data = wav.read_bytes()
    end = len(data) - 1 if last is None else last
    part = httpx.get(uploaded["audioUrl"], headers={"Range": header, "Origin": ORIGIN})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes {first}-{end}/{len(data)}"
    assert part.headers["accept-ranges"] == "bytes"
    assert part.headers["access-control-allow-origin"] == "*"
    assert part.content == data[first : end + 1]


def test_a_suffix_range_and_the_whole_file(uploaded: dict[str, Any], wav: Path) -> None:
    data = wav.read_bytes()
    tail = httpx.get(uploaded["audioUrl"], headers={"Range": "bytes=-10"})
    assert tail.status_code == 206
    assert tail.content == data[-10:]
    whole = httpx.get(uploaded["audioUrl"])
    assert whole.status_code == 200
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.content == data
    several = httpx.get(uploaded["audioUrl"], headers={"Range": "bytes=0-1,5-6"})
    assert several.status_code == 200  # several ranges: the whole file, as HTTP allows
    assert several.content == data


def test_a_range_past_the_end_is_416(uploaded: dict[str, Any], wav: Path) -> None:
    size = wav.stat().st_size
    answer = httpx.get(uploaded["audioUrl"], headers={"Range": f"bytes={size}-"})
    assert_error(answer, 416, "RANGE_NOT_SATISFIABLE")
    assert answer.headers["content-range"] == f"bytes */{size}"


def test_a_range_still_needs_the_signature(uploaded: dict[str, Any]) -> None:
    unsigned = uploaded["audioUrl"].split("?", 1)[0]
    answer = httpx.get(unsigned, headers={"Range": "bytes=0-0"})
    assert_error(answer, 403, "SIGNATURE_INVALID")


def test_a_stem_can_be_fetched_in_parts(sandbox: SandboxProcess, wav: Path) -> None:
    client = api(sandbox)
    split = wait_terminal(client, split_from_upload(client, wav)["id"])
    url = split["stems"]["vocals"]
    whole = httpx.get(url).content
    part = httpx.get(url, headers={"Range": "bytes=44-143"})
    assert part.status_code == 206
    assert part.content == whole[44:144]
