"""Injected API and download faults, and what a careful client does about them."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from tests.sandbox.helpers import api, file_server, stats, wait_terminal
from tests.sandbox_process import SandboxProcess
from tests.waiting import wait_for


def test_fail_rate_gives_429_with_retry_after_and_500(sandbox_factory) -> None:
    sandbox = sandbox_factory(fail_rate=0.6, seed=7, retry_after_seconds=3)
    client = api(sandbox)
    responses = [client.get("/credits") for _ in range(60)]
    codes = {r.status_code for r in responses}
    assert codes == {200, 429, 500}
    for response in responses:
        body = response.json()
        assert response.headers["X-Request-Id"]
        if response.status_code == 429:
            assert response.headers["Retry-After"] == "3"
            assert body["error"]["code"] == "RATE_LIMITED"
        elif response.status_code == 500:
            assert body["error"]["code"] == "INTERNAL_ERROR"
        else:
            assert body["success"] is True


def test_faults_spare_health_stats_and_files(sandbox_factory) -> None:
    sandbox = sandbox_factory(fail_rate=1.0, seed=1)
    for _ in range(10):
        assert httpx.get(f"{sandbox.root_url}/healthz").status_code == 200
        stats(sandbox)  # asserts 200 itself
    assert api(sandbox).get("/credits").status_code in {429, 500}


def _create_until_success(client: httpx.Client, body: dict[str, object], key: str) -> int:
    """Resend with the same key until a 2xx; return that status (201 or a 200 replay)."""
    for _ in range(100):
        response = client.post("/audio/splits", json=body, headers={"Idempotency-Key": key})
        if response.is_success:
            return response.status_code
        assert response.status_code in {429, 500}
    raise AssertionError("never succeeded")


def test_lost_responses_need_the_same_idempotency_key(sandbox_factory, wav_file: Path) -> None:
    sandbox = sandbox_factory(fail_rate=0.5, seed=3)
    client = api(sandbox)
    with file_server(wav_file.parent) as root:
        body = {"input": {"type": "direct_url", "url": f"{root}/song.wav"}}
        finals = [_create_until_success(client, body, f"key-{i}") for i in range(12)]
    # A 200 means an earlier attempt created the split but its response was "lost".
    assert 200 in finals
    assert stats(sandbox)["splits"] == 12


def test_without_a_key_a_lost_response_duplicates(sandbox_factory, wav_file: Path) -> None:
    sandbox = sandbox_factory(fail_rate=0.5, seed=3)
    client = api(sandbox)
    with file_server(wav_file.parent) as root:
        body = {"input": {"type": "direct_url", "url": f"{root}/song.wav"}}
        successes = 0
        for _ in range(40):
            successes += client.post("/audio/splits", json=body).is_success
    assert stats(sandbox)["splits"] > successes


def test_truncated_downloads(sandbox_factory, wav_file: Path) -> None:
    sandbox = sandbox_factory(truncate_rate=1.0)
    client = api(sandbox)
    with file_server(wav_file.parent) as root:
        created = client.post(
            "/audio/splits", json={"input": {"type": "direct_url", "url": f"{root}/song.wav"}}
        ).json()["data"]
    done = wait_terminal(client, created["id"])
    received = 0
    declared = 0
    try:
        with httpx.stream("GET", done["stems"]["vocals"]) as response:
            declared = int(response.headers["Content-Length"])
            for chunk in response.iter_raw():
                received += len(chunk)
    except httpx.RemoteProtocolError:
        pass
    assert 0 < received < declared


def test_latency_still_answers(sandbox_factory) -> None:
    sandbox = sandbox_factory(latency_ms=50)
    response = api(sandbox).get("/credits")
    assert response.status_code == 200
    # The log line is written after the response is sent: wait for it.
    line = wait_for(lambda: re.search(r"GET /credits 200 ([\d.]+)ms", sandbox.log()))
    assert float(line.group(1)) >= 50.0  # the injected delay is part of the handling time


def test_server_survives_clients_that_hang_up(sandbox: SandboxProcess, wav_file: Path) -> None:
    client = api(sandbox)
    with file_server(wav_file.parent) as root:
        created = client.post(
            "/audio/splits", json={"input": {"type": "direct_url", "url": f"{root}/song.wav"}}
        ).json()["data"]
    done = wait_terminal(client, created["id"])
    for _ in range(5):
        with httpx.stream("GET", done["stems"]["vocals"]) as response:
            next(response.iter_raw(1024))  # read a little, then hang up
    assert httpx.get(done["stems"]["vocals"]).status_code == 200
    assert client.get("/credits").status_code == 200


def test_download_kbps_throttles_stem_files_only(sandbox_factory, wav_file: Path) -> None:
    kbps = 2000  # 250 kB/s
    sandbox = sandbox_factory(download_kbps=kbps)
    client = api(sandbox)
    with file_server(wav_file.parent) as root:
        created = client.post(
            "/audio/splits", json={"input": {"type": "direct_url", "url": f"{root}/song.wav"}}
        ).json()["data"]
    done = wait_terminal(client, created["id"])
    url = done["stems"]["vocals"]
    rate = kbps * 1000 // 8

    # Mid-download: the sandbox reports it in flight, and API calls still answer.
    with httpx.stream("GET", url) as response:
        size = int(response.headers["Content-Length"])
        assert size > 2 * rate // 10  # more than a couple of throttle ticks
        next(response.iter_raw(1024))
        assert stats(sandbox)["downloads"]["in_flight"] == 1
        assert client.get("/credits").status_code == 200
        assert client.get(f"/audio/splits/{created['id']}").status_code == 200
    # The client hung up part way: counted as broken, nothing left in flight.
    wait_for(lambda: stats(sandbox)["downloads"]["broken"] == 1)
    assert stats(sandbox)["downloads"]["in_flight"] == 0

    # A whole download is complete and byte-identical, and cannot beat the rate:
    # only the first tick's chunk goes out without waiting.
    started = time.monotonic()
    body = httpx.get(url, timeout=60).content
    elapsed = time.monotonic() - started
    assert len(body) == size
    assert body[:4] == b"RIFF"
    assert elapsed >= (size - rate // 10) / rate
    downloads = stats(sandbox)["downloads"]
    assert downloads["completed"] == 1 and downloads["in_flight"] == 0, downloads


def test_download_kbps_rejects_negative_values() -> None:
    from django_aistemsplitter.sandbox.config import build_parser, config_from_options

    parser = build_parser()
    assert config_from_options(vars(parser.parse_args([]))).download_kbps == 0
    assert (
        config_from_options(vars(parser.parse_args(["--download-kbps", "64"]))).download_kbps == 64
    )
    try:
        parser.parse_args(["--download-kbps", "-1"])
    except SystemExit as exc:
        assert exc.code == 2
    else:
        raise AssertionError("a negative rate was accepted")
