"""Every endpoint of the contract: envelope, status codes, error codes, auth."""

from __future__ import annotations

import io
import math
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from django_aistemsplitter import contract
from tests.conftest import make_wav
from tests.sandbox.helpers import (
    api,
    assert_error,
    file_server,
    split_from_upload,
    stats,
    upload,
    wait_terminal,
)
from tests.sandbox_process import SandboxProcess


def test_health_needs_no_key(sandbox: SandboxProcess) -> None:
    response = httpx.get(f"{sandbox.root_url}/healthz")
    assert response.status_code == 200
    assert response.headers["X-Request-Id"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/credits"),
        ("POST", "/audio/uploads"),
        ("POST", "/audio/splits"),
        ("GET", "/audio/splits"),
        ("GET", "/audio/splits/split_x"),
    ],
)
@pytest.mark.parametrize("key", [None, "ast_test_wrong"])
def test_api_routes_need_the_key(
    sandbox: SandboxProcess, method: str, path: str, key: str | None
) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = httpx.request(method, sandbox.base_url + path, headers=headers, json={})
    assert_error(response, 401, "UNAUTHORIZED")


def test_stats_needs_the_key(sandbox: SandboxProcess) -> None:
    response = httpx.get(f"{sandbox.root_url}/_sandbox/stats")
    assert_error(response, 401, "UNAUTHORIZED")


def test_credits(sandbox: SandboxProcess) -> None:
    response = api(sandbox).get("/credits")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["data"]["unit"] == "seconds"
    assert isinstance(body["data"]["balance"], int)
    assert response.headers["X-Request-Id"].startswith("req_")


def test_request_ids_differ(sandbox: SandboxProcess) -> None:
    client = api(sandbox)
    ids = {client.get("/credits").headers["X-Request-Id"] for _ in range(3)}
    assert len(ids) == 3


def test_unknown_endpoint_and_method(sandbox: SandboxProcess) -> None:
    client = api(sandbox)
    assert_error(client.get("/nope"), 404, "NOT_FOUND")
    assert_error(client.delete("/credits"), 405, "METHOD_NOT_ALLOWED")


def test_upload_flow_produces_stems_that_sum_to_the_mix(
    sandbox: SandboxProcess, wav_file: Path
) -> None:
    client = api(sandbox)
    before = client.get("/credits").json()["data"]["balance"]
    created = split_from_upload(client, wav_file, metadata={"track": "42"})
    assert created["status"] == contract.QUEUED
    assert created["stemModel"] == "htdemucs_ft"
    assert created["filename"] == "song.wav"
    assert created["durationSeconds"] == pytest.approx(2.0)
    assert created["creditsUsed"] == 2
    assert created["stems"] == {}
    assert created["error"] is None

    done = wait_terminal(client, created["id"])
    assert done["status"] == contract.SUCCEEDED
    assert done["progress"] == 1.0
    assert set(done["stems"]) == set(contract.FOUR_STEMS)
    assert done["metadata"]["track"] == "42"
    assert done["metadata"]["sandbox"] == {"engine": "passthrough", "model": "htdemucs_ft"}
    assert done["updatedAt"] >= done["createdAt"]
    assert client.get("/credits").json()["data"]["balance"] == before - 2

    mix, rate = sf.read(wav_file, dtype="float32")
    total = np.zeros_like(mix)
    for url in done["stems"].values():
        response = httpx.get(url)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "audio/wav"
        assert int(response.headers["Content-Length"]) == len(response.content)
        stem, stem_rate = sf.read(io.BytesIO(response.content), dtype="float32")
        assert stem_rate == rate
        total += stem
    assert np.allclose(total, mix, atol=1e-3)


def test_six_stem_model_alias_and_flac(sandbox: SandboxProcess, wav_file: Path) -> None:
    client = api(sandbox)
    created = split_from_upload(client, wav_file, stemModel="6s", outputFormat="flac")
    assert created["stemModel"] == "htdemucs_6s"
    done = wait_terminal(client, created["id"])
    assert list(done["stems"]) == list(contract.SIX_STEMS)
    response = httpx.get(done["stems"]["piano"])
    assert response.headers["Content-Type"] == "audio/flac"
    assert response.content[:4] == b"fLaC"


def test_sdk_style_post_upload_with_multipart_and_storage_key(
    sandbox: SandboxProcess, wav_file: Path
) -> None:
    client = api(sandbox)
    data = client.post("/audio/uploads", json={"filename": "song.wav"}).json()["data"]
    posted = httpx.post(data["uploadUrl"], files={"file": ("song.wav", wav_file.read_bytes())})
    assert posted.status_code == 200
    stored = posted.json()["data"]
    assert stored["key"] == data["key"]
    assert httpx.get(stored["url"]).content == wav_file.read_bytes()
    body = {
        "input": {"type": "uploaded_file", "fileUrl": stored["url"], "storageKey": stored["key"]}
    }
    created = client.post("/audio/splits", json=body)
    assert created.status_code == 201, created.text
    assert wait_terminal(client, created.json()["data"]["id"])["status"] == "succeeded"


def test_direct_url_input(sandbox: SandboxProcess, wav_file: Path) -> None:
    client = api(sandbox)
    with file_server(wav_file.parent) as root:
        created = client.post(
            "/audio/splits", json={"input": {"type": "direct_url", "url": f"{root}/song.wav"}}
        )
        assert created.status_code == 201, created.text
        assert created.json()["data"]["filename"] == "song.wav"
        missing = client.post(
            "/audio/splits", json={"input": {"type": "direct_url", "url": f"{root}/gone.wav"}}
        )
    assert_error(missing, 400, "INVALID_REQUEST")
    assert wait_terminal(client, created.json()["data"]["id"])["status"] == "succeeded"


@pytest.mark.parametrize("url", ["ftp://example.com/a.wav", "file:///etc/passwd", "nota url"])
def test_direct_url_must_be_http(sandbox: SandboxProcess, url: str) -> None:
    response = api(sandbox).post(
        "/audio/splits", json={"input": {"type": "direct_url", "url": url}}
    )
    assert_error(response, 400, "INVALID_REQUEST")


def test_non_audio_is_refused_at_creation(sandbox: SandboxProcess, tmp_path: Path) -> None:
    client = api(sandbox)
    text = tmp_path / "notes.wav"
    text.write_bytes(b"this is not audio at all" * 100)
    data = upload(client, text)
    response = client.post(
        "/audio/splits", json={"input": {"type": "uploaded_file", "uploadId": data["uploadId"]}}
    )
    assert_error(response, 422, "UNSUPPORTED_AUDIO")
    with file_server(tmp_path) as root:
        response = client.post(
            "/audio/splits", json={"input": {"type": "direct_url", "url": f"{root}/notes.wav"}}
        )
    assert_error(response, 422, "UNSUPPORTED_AUDIO")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"stemModel": "htdemucs_9s"}, "stemModel"),
        ({"outputFormat": "aiff"}, "outputFormat"),
        ({"metadata": ["x"]}, None),
        ({"webhookUrl": "not-a-url"}, None),
        ({"input": {"type": "carrier_pigeon"}}, None),
        ({"input": "x"}, None),
    ],
)
def test_invalid_split_bodies(
    sandbox: SandboxProcess, wav_file: Path, body: dict[str, object], field: str | None
) -> None:
    client = api(sandbox)
    data = upload(client, wav_file)
    full = {"input": {"type": "uploaded_file", "uploadId": data["uploadId"]}, **body}
    error = assert_error(client.post("/audio/splits", json=full), 400, "INVALID_REQUEST")
    if field:
        assert error["details"]["field"] == field


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b""])
def test_malformed_json(sandbox: SandboxProcess, raw: bytes) -> None:
    response = api(sandbox).post(
        "/audio/splits", content=raw, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "INVALID_REQUEST")


def test_unknown_split_and_upload(sandbox: SandboxProcess) -> None:
    client = api(sandbox)
    assert_error(client.get("/audio/splits/split_nope"), 404, "NOT_FOUND")
    response = client.post(
        "/audio/splits", json={"input": {"type": "uploaded_file", "uploadId": "upl_nope"}}
    )
    assert_error(response, 404, "NOT_FOUND")


def test_split_of_an_upload_without_data(sandbox: SandboxProcess) -> None:
    client = api(sandbox)
    data = client.post("/audio/uploads", json={"filename": "a.wav"}).json()["data"]
    response = client.post(
        "/audio/splits", json={"input": {"type": "uploaded_file", "uploadId": data["uploadId"]}}
    )
    assert_error(response, 400, "INVALID_REQUEST")


def test_upload_limits(sandbox_factory, tmp_path: Path) -> None:
    sandbox = sandbox_factory(max_upload_bytes=1000)
    client = api(sandbox)
    too_big = client.post("/audio/uploads", json={"filename": "a.wav", "contentLength": 1001})
    assert_error(too_big, 413, "PAYLOAD_TOO_LARGE")

    data = client.post("/audio/uploads", json={"filename": "a.wav"}).json()["data"]
    assert_error(httpx.put(data["uploadUrl"], content=b"x" * 1001), 413, "PAYLOAD_TOO_LARGE")

    declared = client.post(
        "/audio/uploads", json={"filename": "a.wav", "contentLength": 10}
    ).json()["data"]
    assert_error(httpx.put(declared["uploadUrl"], content=b"x" * 11), 413, "PAYLOAD_TOO_LARGE")
    # A chunked body over the limit is cut off while streaming.
    chunked = httpx.put(data["uploadUrl"], content=iter([b"x" * 600, b"y" * 600]))
    assert_error(chunked, 413, "PAYLOAD_TOO_LARGE")
    assert httpx.put(declared["uploadUrl"], content=b"x" * 10).status_code == 200


def test_direct_url_size_limit(sandbox_factory, tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "big.wav", seconds=1.0)
    sandbox = sandbox_factory(max_direct_bytes=wav.stat().st_size - 1)
    with file_server(tmp_path) as root:
        response = api(sandbox).post(
            "/audio/splits", json={"input": {"type": "direct_url", "url": f"{root}/big.wav"}}
        )
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_insufficient_credits(sandbox_factory, tmp_path: Path) -> None:
    sandbox = sandbox_factory(credits=3)
    client = api(sandbox)
    wav = make_wav(tmp_path / "long.wav", seconds=2.5)
    first = split_from_upload(client, wav)
    assert first["creditsUsed"] == math.ceil(2.5)
    assert client.get("/credits").json()["data"]["balance"] == 0
    data = upload(client, wav)
    response = client.post(
        "/audio/splits", json={"input": {"type": "uploaded_file", "uploadId": data["uploadId"]}}
    )
    error = assert_error(response, 402, "INSUFFICIENT_CREDITS")
    assert error["details"] == {"required": 3, "balance": 0}


def test_engine_failure_fails_the_split_and_refunds(sandbox_factory, wav_file: Path) -> None:
    sandbox = sandbox_factory(engine="no_such_engine")
    client = api(sandbox)
    before = client.get("/credits").json()["data"]["balance"]
    created = split_from_upload(client, wav_file, metadata={"k": "v"})
    done = wait_terminal(client, created["id"])
    assert done["status"] == contract.FAILED
    assert done["error"]["code"] == "SEPARATION_FAILED"
    assert "no_such_engine" in done["error"]["message"]
    assert done["stems"] == {}
    assert done["metadata"]["k"] == "v"
    assert client.get("/credits").json()["data"]["balance"] == before


def test_idempotency(sandbox: SandboxProcess, wav_file: Path) -> None:
    client = api(sandbox)
    data = upload(client, wav_file)
    body = {"input": {"type": "uploaded_file", "uploadId": data["uploadId"]}}
    headers = {"Idempotency-Key": "idem-" + data["uploadId"]}
    first = client.post("/audio/splits", json=body, headers=headers)
    again = client.post("/audio/splits", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["data"]["id"] == again.json()["data"]["id"]
    other = client.post("/audio/splits", json={**body, "outputFormat": "flac"}, headers=headers)
    assert_error(other, 409, "IDEMPOTENCY_CONFLICT")
    fresh = client.post("/audio/splits", json=body, headers={"Idempotency-Key": "other"})
    assert fresh.status_code == 201
    assert fresh.json()["data"]["id"] != first.json()["data"]["id"]


def test_pagination_newest_first_with_status_filter(sandbox_factory, wav_file: Path) -> None:
    sandbox = sandbox_factory()
    client = api(sandbox)
    created = [split_from_upload(client, wav_file)["id"] for _ in range(5)]
    for split_id in created:
        wait_terminal(client, split_id)

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        data = client.get("/audio/splits", params=params).json()["data"]
        assert len(data["items"]) <= 2
        seen += [item["id"] for item in data["items"]]
        cursor = data["nextCursor"]
        pages += 1
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(created))

    default = client.get("/audio/splits").json()["data"]
    assert len(default["items"]) == 5 and default["nextCursor"] is None
    succeeded = client.get("/audio/splits", params={"status": "succeeded"}).json()["data"]
    assert len(succeeded["items"]) == 5
    queued = client.get("/audio/splits", params={"status": "queued"}).json()["data"]
    assert queued == {"items": [], "nextCursor": None}


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"cursor": "garbage!"}, {"status": "done"}],
)
def test_list_rejects_bad_parameters(sandbox: SandboxProcess, params: dict[str, object]) -> None:
    assert_error(api(sandbox).get("/audio/splits", params=params), 400, "INVALID_REQUEST")


def test_limit_bounds_are_accepted(sandbox: SandboxProcess) -> None:
    client = api(sandbox)
    for limit in (1, 100):
        assert client.get("/audio/splits", params={"limit": limit}).status_code == 200


def test_stats_count_route_templates(sandbox_factory) -> None:
    sandbox = sandbox_factory()
    client = api(sandbox)
    client.get("/audio/splits/split_a")
    client.get("/audio/splits/split_b")
    client.get("/credits")
    data = stats(sandbox)
    assert data["requests"]["GET /audio/splits/{id}"] == 2
    assert data["requests"]["GET /credits"] == 1
    assert data["splits"] == 0
    assert set(data["webhooks"]) >= {"attempted", "delivered", "failed"}


def test_processing_seconds_shows_progress(sandbox_factory, wav_file: Path) -> None:
    sandbox = sandbox_factory(processing_seconds=2)
    client = api(sandbox)
    created = split_from_upload(client, wav_file)
    seen: list[tuple[str, float]] = []
    while True:
        data = client.get(f"/audio/splits/{created['id']}").json()["data"]
        seen.append((data["status"], data["progress"]))
        if data["status"] == "succeeded":
            break
        time.sleep(0.02)
    statuses = [s for s, _ in seen]
    assert "processing" in statuses
    ranks = [contract.STATUS_RANK[s] for s in statuses]
    assert ranks == sorted(ranks)
    progress = [p for _, p in seen]
    assert progress == sorted(progress)
    assert any(0 < p < 1 for p in progress)


def test_sandbox_log_has_no_secrets(sandbox_factory, wav_file: Path) -> None:
    sandbox = sandbox_factory()
    client = api(sandbox)
    done = wait_terminal(client, split_from_upload(client, wav_file)["id"])
    httpx.get(done["stems"]["vocals"])
    log = sandbox.log()
    assert "GET /files/splits/{id}/{file} 200" in log
    assert sandbox.api_key not in log
    assert sandbox.webhook_secret not in log
    assert "signature=" not in log
