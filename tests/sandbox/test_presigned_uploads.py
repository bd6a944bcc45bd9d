"""Presigned uploads the three ways the contract allows, and ``audioUrl`` as split input.

The SDK documentation's big-file recipe presigns, uploads "via httpx multipart",
then submits ``input=upload.audio_url``; these check each step on small files
against a sandbox whose gateway limit (``--max-direct-bytes``) is smaller than
the file, so a URL treated as a gateway download would answer 413.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from tests.conftest import make_wav
from tests.sandbox.helpers import api, assert_error, file_server, wait_terminal
from tests.sandbox_process import SandboxProcess

UploadWay = Callable[[str, Path], httpx.Response]


def raw_put(url: str, path: Path) -> httpx.Response:
    return httpx.put(url, content=path.read_bytes(), headers={"Content-Type": "audio/wav"})


def multipart(method: str) -> UploadWay:
    def send(url: str, path: Path) -> httpx.Response:
        with path.open("rb") as handle:
            files = {"file": (path.name, handle, "audio/wav")}
            return httpx.request(method, url, files=files, data={"note": "a form field too"})

    return send


WAYS: dict[str, UploadWay] = {
    "raw-put": raw_put,
    "multipart-post": multipart("POST"),
    "multipart-put": multipart("PUT"),
}


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    return make_wav(tmp_path / "song.wav", seconds=1.0)


@pytest.fixture
def small_gateway(sandbox_factory: Callable[..., SandboxProcess], wav: Path) -> SandboxProcess:
    """A sandbox whose gateway refuses ``wav`` as a download (one byte too many)."""
    return sandbox_factory(max_direct_bytes=wav.stat().st_size - 1)


def presign(client: httpx.Client, path: Path, **extra: Any) -> dict[str, Any]:
    body = {"filename": path.name, "contentType": "audio/wav", **extra}
    response = client.post("/audio/uploads", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


@pytest.mark.parametrize("way", list(WAYS))
def test_each_way_stores_exactly_the_file_under_its_declared_length(
    small_gateway: SandboxProcess, wav: Path, way: str
) -> None:
    client = api(small_gateway)
    data = presign(client, wav, contentLength=wav.stat().st_size)
    sent = WAYS[way](data["uploadUrl"], wav)
    assert sent.status_code == 200, sent.text
    assert httpx.get(data["audioUrl"]).content == wav.read_bytes()


@pytest.mark.parametrize("way", ["multipart-post", "multipart-put"])
def test_a_form_whose_file_is_over_the_declared_length_is_refused(
    sandbox: SandboxProcess, wav: Path, way: str
) -> None:
    client = api(sandbox)
    data = presign(client, wav, contentLength=wav.stat().st_size - 1)
    assert_error(WAYS[way](data["uploadUrl"], wav), 413, "PAYLOAD_TOO_LARGE")
    assert httpx.get(data["audioUrl"]).status_code == 404  # nothing was kept


@pytest.mark.parametrize("as_string", [True, False], ids=["bare-url", "direct_url-object"])
def test_audio_url_input_is_the_uploaded_file_not_a_gateway_download(
    small_gateway: SandboxProcess, wav: Path, as_string: bool
) -> None:
    client = api(small_gateway)
    data = presign(client, wav, contentLength=wav.stat().st_size)
    assert multipart("POST")(data["uploadUrl"], wav).status_code == 200
    created = client.post(
        "/audio/splits", json={"input": {"type": "direct_url", "url": data["audioUrl"]}}
    )
    assert created.status_code == 201, created.text
    assert created.json()["data"]["filename"] == "song.wav"
    assert wait_terminal(client, created.json()["data"]["id"])["status"] == "succeeded"


def test_the_same_file_elsewhere_is_still_a_gateway_download(
    small_gateway: SandboxProcess, wav: Path
) -> None:
    with file_server(wav.parent) as root:
        response = api(small_gateway).post(
            "/audio/splits", json={"input": {"type": "direct_url", "url": f"{root}/song.wav"}}
        )
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_a_tampered_audio_url_is_refused(sandbox: SandboxProcess, wav: Path) -> None:
    client = api(sandbox)
    data = presign(client, wav)
    assert raw_put(data["uploadUrl"], wav).status_code == 200
    parts = urlsplit(data["audioUrl"])
    query = dict(parse_qsl(parts.query))
    query["signature"] = "0" * len(query["signature"])
    forged = parts._replace(query=urlencode(query)).geturl()
    response = client.post("/audio/splits", json={"input": {"type": "direct_url", "url": forged}})
    assert_error(response, 403, "SIGNATURE_INVALID")


def test_an_audio_url_before_the_upload_says_to_upload_first(
    sandbox: SandboxProcess, wav: Path
) -> None:
    client = api(sandbox)
    data = presign(client, wav)
    response = client.post(
        "/audio/splits", json={"input": {"type": "direct_url", "url": data["audioUrl"]}}
    )
    error = assert_error(response, 400, "INVALID_REQUEST")
    assert "no data yet" in error["message"]
