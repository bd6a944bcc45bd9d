"""Every method over real HTTP against the sandbox server, with both clients."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from django_aistemsplitter import contract
from django_aistemsplitter.client import Split, UploadedInput
from django_aistemsplitter.client import exceptions as ex
from tests.client.conftest import Api, request_count, stats
from tests.poll_simulation import simulate_polls
from tests.sandbox_process import SandboxProcess, free_port

GET_SPLIT = "GET /audio/splits/{id}"
POST_SPLITS = "POST /audio/splits"


async def submit_wav(api: Api, wav: Path, **kwargs: Any) -> Split:
    return await api.create_split(await api.upload_file(wav), **kwargs)


async def test_credits(api: Api) -> None:
    credits = await api.get_credits()
    assert credits.unit == "seconds" and credits.balance > 0
    assert credits.raw["balance"] == credits.balance


async def test_upload_submit_wait_download(api: Api, wav_file: Path, tmp_path: Path) -> None:
    uploaded = await api.upload_file(wav_file)
    assert isinstance(uploaded, UploadedInput) and uploaded.upload_id
    assert uploaded.content_length == wav_file.stat().st_size
    created = await api.submit(input=uploaded, metadata={"track": "42"}, model="4s")
    assert created.status in (contract.QUEUED, contract.PROCESSING)
    assert created.stem_model == "htdemucs_ft" and created.metadata["track"] == "42"
    fetched = await api.get(created.id)
    assert fetched.id == created.id
    done = await api.wait(created.id, timeout=120)
    assert done.succeeded and set(done.stems) == set(contract.FOUR_STEMS)
    paths = await api.download(done, tmp_path / "stems")
    assert set(paths) == set(contract.FOUR_STEMS)
    assert sorted(p.name for p in (tmp_path / "stems").iterdir()) == sorted(
        f"{n}.wav" for n in contract.FOUR_STEMS
    )
    mix, rate = sf.read(wav_file, dtype="float32")
    total = np.zeros_like(mix)
    for path in paths.values():
        audio, stem_rate = sf.read(path, dtype="float32")
        assert stem_rate == rate and audio.shape == mix.shape
        total += audio
    assert np.max(np.abs(total - mix)) < 1e-3  # passthrough stems sum to the mix
    umask = os.umask(0o022)
    os.umask(umask)
    # Not the temp file's 0600: downloaded stems are readable like any new file.
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask for p in paths.values())


async def test_direct_url_six_stems_flac(api: Api, wav_file: Path, tmp_path: Path) -> None:
    uploaded = await api.upload_file(wav_file)
    assert uploaded.url  # the sandbox answers the upload with {url, key}
    split = await api.create_split(uploaded.url, stem_model="6s", output_format="flac")
    done = await api.wait_for_split(split, timeout=120)
    paths = await api.download_stems(done.id, tmp_path)  # by id: fetches the split itself
    assert set(paths) == set(contract.SIX_STEMS)
    assert all(p.suffix == ".flac" and sf.info(p).format == "FLAC" for p in paths.values())


async def test_presign_upload(api: Api) -> None:
    upload = await api.presign_upload(filename="a.wav", content_type="audio/wav", content_length=10)
    assert upload.upload_id and upload.upload_url.startswith("http://127.0.0.1")
    assert upload.upload_method in ("PUT", "POST") and upload.expires_at is not None


async def test_pagination_over_several_pages(
    make_api: Callable[..., Api], sandbox_factory: Callable[..., SandboxProcess], wav_file: Path
) -> None:
    sandbox = sandbox_factory()
    api = make_api(sandbox)
    uploaded = await api.upload_file(wav_file)
    created = [(await api.create_split(uploaded)).id for _ in range(5)]
    page = await api.list_splits(limit=2)
    assert len(page.items) == 2 and page.next_cursor
    walked = [s.id for s in await api.walk(page)]
    assert sorted(walked) == sorted(created)  # each exactly once
    assert walked == created[::-1]  # newest first
    assert request_count(sandbox, "GET /audio/splits") == 3
    every = [s.id for s in await api.collect(api.client.iter_splits(limit=2))]
    assert every == walked
    last = await api.list_splits(limit=100)
    assert last.next_cursor is None and len(last.items) == 5


async def test_status_filter(api: Api, wav_file: Path) -> None:
    split = await api.wait(await submit_wav(api, wav_file), timeout=120)
    page = await api.list_splits(limit=100, status=contract.SUCCEEDED)
    assert split.id in {s.id for s in page.items}
    assert {s.status for s in page.items} == {contract.SUCCEEDED}


async def test_idempotent_replay_and_conflict(api: Api, wav_file: Path) -> None:
    uploaded = await api.upload_file(wav_file)
    key = f"test-{uuid.uuid4()}"
    first = await api.create_split(uploaded, idempotency_key=key)
    again = await api.create_split(uploaded, idempotency_key=key)
    assert again.id == first.id
    with pytest.raises(ex.IdempotencyConflictError) as caught:
        await api.create_split(uploaded, idempotency_key=key, stem_model="htdemucs_6s")
    assert caught.value.status_code == 409 and caught.value.request_id


async def test_retries_under_faults_create_one_split_per_submit(
    make_api: Callable[..., Api], sandbox_factory: Callable[..., SandboxProcess], wav_file: Path
) -> None:
    """30% of calls fail, some 5xx after the split was created: still one split per submit."""
    sandbox = sandbox_factory(fail_rate=0.3, retry_after_seconds=0, seed=7)
    api = make_api(sandbox, max_retries=12)
    uploaded = await api.upload_file(wav_file)
    ids = [(await api.create_split(uploaded)).id for _ in range(10)]
    assert len(set(ids)) == 10
    counters = stats(sandbox)
    assert counters["splits"] == 10
    assert counters["requests"][POST_SPLITS] > 10  # faults really happened and were retried
    listed = [s.id for s in await api.collect(api.client.iter_splits(limit=3))]
    assert sorted(listed) == sorted(ids)


async def test_wait_for_split_poll_count(
    make_api: Callable[..., Api], sandbox_factory: Callable[..., SandboxProcess], wav_file: Path
) -> None:
    processing = 6.0
    sandbox = sandbox_factory(processing_seconds=processing)
    api = make_api(sandbox)
    split = await submit_wav(api, wav_file)
    done = await api.wait_for_split(split.id, timeout=120)
    assert done.succeeded
    gets = request_count(sandbox, GET_SPLIT)
    # What the schedule allows for this job, with two seconds of slack for overheads.
    allowed = max(
        len(simulate_polls(processing + 2, report_progress=flag)) for flag in (True, False)
    )
    assert 2 <= gets <= allowed
    assert gets <= processing / 2 + 1  # never more than the published SDK's fixed 2 s polling


async def test_wait_timeout(
    make_api: Callable[..., Api], sandbox_factory: Callable[..., SandboxProcess], wav_file: Path
) -> None:
    sandbox = sandbox_factory(processing_seconds=60)
    api = make_api(sandbox)
    split = await submit_wav(api, wav_file)
    with pytest.raises(ex.APITimeoutError, match="after 3s"):
        await api.wait(split.id, timeout=3, interval=1)
    assert 2 <= request_count(sandbox, GET_SPLIT) <= 4


async def test_truncated_downloads_are_retried(
    make_api: Callable[..., Api],
    sandbox_factory: Callable[..., SandboxProcess],
    wav_file: Path,
    tmp_path: Path,
) -> None:
    sandbox = sandbox_factory(truncate_rate=0.5, seed=3)
    api = make_api(sandbox, max_retries=12)
    done = await api.wait(await submit_wav(api, wav_file), timeout=120)
    paths = await api.download(done, tmp_path / "out")
    mix, _ = sf.read(wav_file, dtype="float32")
    for path in paths.values():
        assert sf.read(path, dtype="float32")[0].shape == mix.shape
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == sorted(p.name for p in paths.values())  # no temporary file left
    file_gets = sum(n for k, n in stats(sandbox)["requests"].items() if k.startswith("GET /files"))
    assert file_gets > len(paths)  # some downloads really were cut and fetched again


async def test_truncated_downloads_give_up_cleanly(
    make_api: Callable[..., Api],
    sandbox_factory: Callable[..., SandboxProcess],
    wav_file: Path,
    tmp_path: Path,
) -> None:
    sandbox = sandbox_factory(truncate_rate=1.0)
    api = make_api(sandbox, max_retries=1)
    done = await api.wait(await submit_wav(api, wav_file), timeout=120)
    with pytest.raises(ex.DownloadError):
        await api.download(done, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []  # no partial or temporary file


# --- every error class -------------------------------------------------------------------


async def test_401_wrong_key(make_api: Callable[..., Api], sandbox: SandboxProcess) -> None:
    api = make_api(sandbox, api_key="ast_test_wrong")
    with pytest.raises(ex.AuthenticationError) as caught:
        await api.get_credits()
    assert caught.value.status_code == 401 and caught.value.code == "UNAUTHORIZED"


async def test_402_insufficient_credits(
    make_api: Callable[..., Api], sandbox_factory: Callable[..., SandboxProcess], wav_file: Path
) -> None:
    api = make_api(sandbox_factory(credits=1))
    with pytest.raises(ex.InsufficientCreditsError) as caught:
        await submit_wav(api, wav_file)  # two seconds of audio, one second of credit
    assert caught.value.status_code == 402


async def test_404(api: Api) -> None:
    with pytest.raises(ex.NotFoundError) as caught:
        await api.get_split("split_doesnotexist")
    assert caught.value.status_code == 404 and caught.value.request_id


@pytest.mark.parametrize("limit", [0, 101])
async def test_400_bad_limit(api: Api, limit: int) -> None:
    with pytest.raises(ex.InvalidRequestError) as caught:
        await api.list_splits(limit=limit)
    assert caught.value.status_code == 400


async def test_400_unknown_model_from_the_server(api: Api, wav_file: Path) -> None:
    """The client refuses unknown models itself; bypass that to check the server's answer."""
    uploaded = await api.upload_file(wav_file)
    core = api.client._core
    body = {"input": uploaded.to_input(), "stemModel": "mdx_extra"}
    with pytest.raises(ex.InvalidRequestError) as caught:
        await api._run(core.call("POST", "/audio/splits", json_body=body))
    assert caught.value.status_code == 400


async def test_413_upload_too_large(
    make_api: Callable[..., Api], sandbox_factory: Callable[..., SandboxProcess], wav_file: Path
) -> None:
    api = make_api(sandbox_factory(max_upload_bytes=1000))
    with pytest.raises(ex.PayloadTooLargeError) as caught:
        await api.upload_file(wav_file)
    assert caught.value.status_code == 413


async def test_422_not_audio(api: Api, tmp_path: Path) -> None:
    junk = tmp_path / "notes.wav"
    junk.write_bytes(b"definitely not audio\n" * 50)
    with pytest.raises(ex.UnsupportedAudioError) as caught:
        await api.create_split(await api.upload_file(junk))
    assert caught.value.status_code == 422


async def test_429_and_5xx_once_retries_run_out(
    make_api: Callable[..., Api], sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    api = make_api(sandbox_factory(fail_rate=1.0, retry_after_seconds=7), max_retries=0)
    seen: dict[type, Any] = {}
    for _ in range(40):
        try:
            await api.get_credits()
        except (ex.RateLimitError, ex.ServerError) as exc:
            seen.setdefault(type(exc), exc)
        if len(seen) == 2:
            break
    assert set(seen) == {ex.RateLimitError, ex.ServerError}
    assert seen[ex.RateLimitError].retry_after == 7.0
    assert seen[ex.ServerError].status_code >= 500


async def test_network_error_on_a_closed_port(make_api: Callable[..., Api]) -> None:
    api = make_api(api_key="k", base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=1)
    with pytest.raises(ex.NetworkError) as caught:
        await api.get_credits()
    assert not isinstance(caught.value, ex.APITimeoutError)


async def test_request_timeout(
    make_api: Callable[..., Api], sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    api = make_api(sandbox_factory(latency_ms=2000), timeout=0.3, max_retries=0)
    with pytest.raises(ex.APITimeoutError):
        await api.get_credits()


# --- webhooks sent by the sandbox ------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    deliveries: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.deliveries.append((dict(self.headers.items()), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    deliveries: list[tuple[dict[str, str], bytes]] = []
    handler = type("Receiver", (_Receiver,), {"deliveries": deliveries})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook/", deliveries
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("webhook_format", ["full", "thin"])
async def test_real_webhooks_verify(
    make_api: Callable[..., Api],
    sandbox_factory: Callable[..., SandboxProcess],
    receiver: tuple[str, list[tuple[dict[str, str], bytes]]],
    wav_file: Path,
    webhook_format: str,
) -> None:
    url, deliveries = receiver
    api = make_api(sandbox_factory(webhook_format=webhook_format))
    split = await submit_wav(api, wav_file, webhook_url=url)
    await api.wait(split.id, timeout=120)
    for _ in range(100):
        if deliveries:
            break
        await asyncio.sleep(0.1)
    assert deliveries, "the sandbox sent no webhook"
    headers, body = deliveries[0]
    event = api.client.verify_webhook(headers, body)
    assert event.split_id == split.id and event.status == contract.SUCCEEDED
    assert event.is_thin == (webhook_format == "thin") == event.needs_fetch
    if event.needs_fetch:
        assert (await api.get(event.split_id)).stems
    else:
        assert set(event.data.stems) == set(contract.FOUR_STEMS)
    with pytest.raises(Exception, match="does not match"):
        api.client.verify_webhook(headers, body + b" ")
