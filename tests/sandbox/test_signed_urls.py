"""Stem and upload URLs authenticate by signature and expire."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.sandbox.helpers import api, assert_error, file_server, split_from_upload, wait_terminal
from tests.sandbox_process import SandboxProcess


def _done(sandbox: SandboxProcess, wav_file: Path) -> dict[str, object]:
    client = api(sandbox)
    return wait_terminal(client, split_from_upload(client, wav_file)["id"])


def _tamper_signature(url: str) -> str:
    head, _, signature = url.rpartition("signature=")
    return head + "signature=" + ("0" if signature[0] != "0" else "1") + signature[1:]


def test_stem_urls_need_no_bearer_key(sandbox: SandboxProcess, wav_file: Path) -> None:
    done = _done(sandbox, wav_file)
    assert httpx.get(done["stems"]["drums"]).status_code == 200  # type: ignore[index]


def test_tampered_signature(sandbox: SandboxProcess, wav_file: Path) -> None:
    url = _done(sandbox, wav_file)["stems"]["bass"]  # type: ignore[index]
    assert_error(httpx.get(_tamper_signature(url)), 403, "SIGNATURE_INVALID")


def test_signature_is_bound_to_the_path(sandbox: SandboxProcess, wav_file: Path) -> None:
    stems = _done(sandbox, wav_file)["stems"]
    other = stems["bass"].replace("/bass.wav", "/drums.wav")  # type: ignore[index]
    assert_error(httpx.get(other), 403, "SIGNATURE_INVALID")


def test_unsigned_and_forged_expiry(sandbox: SandboxProcess, wav_file: Path) -> None:
    url = _done(sandbox, wav_file)["stems"]["other"]  # type: ignore[index]
    assert_error(httpx.get(url.split("?")[0]), 403, "SIGNATURE_INVALID")
    expires = parse_qs(urlsplit(url).query)["expires"][0]
    later = url.replace(f"expires={expires}", f"expires={int(expires) + 3600}")
    assert_error(httpx.get(later), 403, "SIGNATURE_INVALID")


def test_upload_url_signature(sandbox: SandboxProcess) -> None:
    data = api(sandbox).post("/audio/uploads", json={"filename": "a.wav"}).json()["data"]
    assert_error(
        httpx.put(_tamper_signature(data["uploadUrl"]), content=b"x"), 403, "SIGNATURE_INVALID"
    )
    # An upload URL does not download, and a download URL does not upload.
    assert_error(httpx.put(data["audioUrl"], content=b"x"), 405, "METHOD_NOT_ALLOWED")


def test_expired_url(sandbox_factory, wav_file: Path) -> None:
    sandbox = sandbox_factory(url_ttl_seconds=1)
    client = api(sandbox)
    with file_server(wav_file.parent) as root:
        created = client.post(
            "/audio/splits", json={"input": {"type": "direct_url", "url": f"{root}/song.wav"}}
        ).json()["data"]
    url = wait_terminal(client, created["id"])["stems"]["vocals"]
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    time.sleep(max(0.0, expires - time.time()) + 1.1)
    assert_error(httpx.get(url), 403, "URL_EXPIRED")
    fresh = client.get(f"/audio/splits/{created['id']}").json()["data"]["stems"]["vocals"]
    assert httpx.get(fresh).status_code == 200


def test_stem_of_unknown_split(sandbox: SandboxProcess, wav_file: Path) -> None:
    done = _done(sandbox, wav_file)
    url = done["stems"]["vocals"]  # type: ignore[index]
    # Valid signatures are only minted for real files, so a missing one is a 403, not a 404.
    assert_error(httpx.get(url.replace(str(done["id"]), "split_nope")), 403, "SIGNATURE_INVALID")
