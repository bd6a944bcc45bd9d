"""Client behaviour against a mocked transport, in both modes: retries, validation,
uploads and download safety (faults the real sandbox cannot produce)."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from django_aistemsplitter import contract
from django_aistemsplitter.client import (
    APITimeoutError,
    AsyncAiStemSplitter,
    AuthenticationError,
    DownloadError,
    InvalidRequestError,
    ServerError,
    SplitFailedError,
    UnsafeStemNameError,
    UploadedInput,
)
from tests.client.conftest import Api

SPLIT = {"id": "split_1", "status": "queued", "stemModel": "htdemucs_ft", "progress": 0.0}


def ok(data: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json={"success": True, "data": data})


def fail(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    error = {"code": code, "message": f"{code} happened", "details": None}
    return httpx.Response(status, json={"success": False, "error": error}, headers=headers)


class Recorder:
    """A transport handler that answers from a script and keeps every request."""

    def __init__(self, *answers: Callable[[httpx.Request], httpx.Response] | httpx.Response):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(request) if callable(answer) else answer

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests]


async def test_missing_key_is_reported_by_the_first_request(
    mock_api: Callable[..., Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(contract.API_KEY_ENV, raising=False)
    handler = Recorder(ok({"balance": 1, "unit": "seconds"}))
    api = mock_api(handler, api_key=None)  # constructing is fine
    assert "api_key=unset" in repr(api.client)
    with pytest.raises(AuthenticationError, match=contract.API_KEY_ENV):
        await api.get_credits()
    assert handler.requests == []
    monkeypatch.setenv(contract.API_KEY_ENV, "ast_test_from_env")
    assert (await api.get_credits()).balance == 1
    assert handler.requests[0].headers["Authorization"] == "Bearer ast_test_from_env"


async def test_a_retried_submit_reuses_its_idempotency_key(mock_api: Callable[..., Api]) -> None:
    handler = Recorder(
        fail(429, "RATE_LIMITED", {"Retry-After": "0"}),
        fail(429, "RATE_LIMITED", {"Retry-After": "0"}),
        ok(SPLIT, 201),
    )
    api = mock_api(handler)
    split = await api.create_split(
        "https://example.com/a.mp3", webhook_url="https://hook/", metadata={"t": "1"}
    )
    assert split.id == "split_1"
    assert len(handler.requests) == 3
    keys = {r.headers[contract.IDEMPOTENCY_HEADER] for r in handler.requests}
    assert len(keys) == 1
    uuid.UUID(keys.pop())
    assert handler.bodies()[0] == {
        "input": {"type": "direct_url", "url": "https://example.com/a.mp3"},
        "stemModel": "htdemucs_ft",
        "outputFormat": "wav",
        "webhookUrl": "https://hook/",
        "metadata": {"t": "1"},
    }
    # A second submit is a different request: it gets a fresh key.
    await api.submit("https://example.com/a.mp3")
    assert handler.requests[-1].headers[contract.IDEMPOTENCY_HEADER] not in keys


async def test_caller_key_aliases_and_inputs(mock_api: Callable[..., Api]) -> None:
    handler = Recorder(ok(SPLIT, 201))
    api = mock_api(handler)
    await api.create_split(
        {"type": "uploaded_file", "uploadId": "upl_1"}, "4s", idempotency_key="k1"
    )
    await api.create_split("https://x/a.wav", model="6s", output_format="flac")
    await api.create_split(UploadedInput("upl_9"), stem_model="htdemucs")
    bodies = handler.bodies()
    assert handler.requests[0].headers[contract.IDEMPOTENCY_HEADER] == "k1"
    assert bodies[0]["stemModel"] == "htdemucs_ft"
    assert bodies[0]["input"] == {"type": "uploaded_file", "uploadId": "upl_1"}
    assert bodies[1]["stemModel"] == "htdemucs_6s" and bodies[1]["outputFormat"] == "flac"
    assert bodies[2]["input"] == {"type": "uploaded_file", "uploadId": "upl_9"}
    assert "webhookUrl" not in bodies[1] and "metadata" not in bodies[1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"input": "https://x/a.wav", "stem_model": "mdx_extra"}, "unknown stem model"),
        ({"input": "https://x/a.wav", "output_format": "ogg"}, "unknown output format"),
        ({"input": "/home/me/song.wav"}, "upload_file"),
        ({"input": {"type": "s3", "url": "x"}}, "input type"),
        ({"input": 42}, "cannot use a int"),
        ({"input": "https://x/a.wav", "stem_model": "htdemucs", "model": "6s"}, "disagree"),
    ],
)
async def test_invalid_submissions_are_refused_before_sending(
    mock_api: Callable[..., Api], kwargs: dict[str, Any], match: str
) -> None:
    handler = Recorder(ok(SPLIT, 201))
    api = mock_api(handler)
    with pytest.raises(InvalidRequestError, match=match) as caught:
        await api.create_split(**kwargs)
    assert isinstance(caught.value, ValueError)
    assert handler.requests == []


async def test_other_4xx_are_not_retried(mock_api: Callable[..., Api]) -> None:
    handler = Recorder(fail(400, "INVALID_REQUEST"))
    api = mock_api(handler, max_retries=5)
    with pytest.raises(InvalidRequestError):
        await api.get_split("split_1")
    assert len(handler.requests) == 1


async def test_5xx_retries_are_bounded(mock_api: Callable[..., Api]) -> None:
    handler = Recorder(httpx.Response(503, text="upstream down"))
    api = mock_api(handler, max_retries=2)
    with pytest.raises(ServerError, match="upstream down"):
        await api.get_credits()
    assert len(handler.requests) == 3


async def test_timeouts_are_retried_then_raised(mock_api: Callable[..., Api]) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    handler = Recorder(slow)
    api = mock_api(handler, max_retries=1)
    with pytest.raises(APITimeoutError, match="timed out") as caught:
        await api.get_split("split_1")
    assert isinstance(caught.value, TimeoutError)
    assert len(handler.requests) == 2


async def test_ids_cannot_walk_the_path(mock_api: Callable[..., Api]) -> None:
    handler = Recorder(ok(SPLIT))
    api = mock_api(handler)
    await api.get_split("../credits")
    assert handler.requests[0].url.raw_path == b"/v1/audio/splits/..%2Fcredits"
    with pytest.raises(InvalidRequestError):
        await api.get_split("")


def _presign(method: str = "PUT") -> httpx.Response:
    return ok(
        {
            "uploadId": "upl_1",
            "uploadUrl": "https://uploads.test/put/upl_1?sig=abc",
            "uploadMethod": method,
            "uploadHeaders": {"x-upload-token": "t1"},
            "expiresAt": "2030-01-01T00:00:00Z",
            "audioUrl": "https://uploads.test/a/upl_1",
        },
        201,
    )


@pytest.mark.parametrize("answer", ["empty", "envelope"])
async def test_upload_streams_a_file_object(mock_api: Callable[..., Api], answer: str) -> None:
    """Both answers of the contract: an empty 200, and the SDK's ``{url, key}`` envelope."""
    if answer == "empty":
        reply = httpx.Response(200)
    else:
        reply = ok({"url": "https://uploads.test/a/upl_1", "key": "uploads/upl_1/song.wav"})
    handler = Recorder(_presign(), reply)
    api = mock_api(handler)
    data = b"RIFF" + bytes(range(256)) * 1000
    source = io.BytesIO(b"skip-me" + data)
    source.seek(7)
    uploaded = await api.upload_file(source, filename="song.wav")
    presign, put = handler.requests
    assert json.loads(presign.content) == {
        "filename": "song.wav",
        "contentType": "audio/wav",
        "contentLength": len(data),
    }
    assert put.method == "PUT" and str(put.url).startswith("https://uploads.test/put/upl_1")
    assert put.content == data
    assert put.headers["Content-Length"] == str(len(data))
    assert put.headers["Content-Type"] == "audio/wav"
    assert put.headers["x-upload-token"] == "t1"
    assert "Authorization" not in put.headers  # the key never goes to the upload host
    assert uploaded.upload_id == "upl_1" and uploaded.content_length == len(data)
    assert uploaded.to_input() == {"type": "uploaded_file", "uploadId": "upl_1"}
    assert not source.closed  # the caller's file stays the caller's
    if answer == "envelope":
        assert uploaded.key == "uploads/upl_1/song.wav"


async def test_upload_path_and_sdk_post_method(
    mock_api: Callable[..., Api], tmp_path: Path
) -> None:
    path = tmp_path / "take.flac"
    path.write_bytes(b"fLaC" + b"\0" * 5000)
    handler = Recorder(_presign("POST"), httpx.Response(200))
    api = mock_api(handler)
    uploaded = await api.upload_file(path)
    presign, post = handler.requests
    assert json.loads(presign.content)["contentType"] == "audio/flac"
    assert uploaded.filename == "take.flac"
    assert post.method == "POST" and post.content == path.read_bytes()


def _succeeded(stems: dict[str, str]) -> httpx.Response:
    return ok({**SPLIT, "status": "succeeded", "progress": 1.0, "stems": stems})


async def test_unsafe_stem_names_are_refused_before_touching_disk(
    mock_api: Callable[..., Api], tmp_path: Path
) -> None:
    handler = Recorder(_succeeded({"vocals": "https://s/v.wav", "../../evil": "https://s/e.wav"}))
    api = mock_api(handler)
    target = tmp_path / "out"
    with pytest.raises(UnsafeStemNameError, match="evil"):
        await api.download_stems("split_1", target)
    assert not target.exists()
    assert [r.url.host for r in handler.requests] == ["api.test"]  # no stem was fetched


async def test_failed_split_raises(mock_api: Callable[..., Api], tmp_path: Path) -> None:
    failed = {**SPLIT, "status": "failed", "error": {"code": "BAD_AUDIO", "message": "silent"}}
    api = mock_api(Recorder(ok(failed)))
    with pytest.raises(SplitFailedError, match="silent") as caught:
        await api.download("split_1", tmp_path)
    assert caught.value.code == "BAD_AUDIO" and caught.value.split_id == "split_1"
    running = mock_api(Recorder(ok({**SPLIT, "status": "processing"})))
    with pytest.raises(DownloadError, match="wait_for_split"):
        await running.download("split_1", tmp_path)
    assert list(tmp_path.iterdir()) == []


def _stem_server(full: bytes, short_answers: int) -> Callable[[httpx.Request], httpx.Response]:
    """Stem URLs answer with a body shorter than its Content-Length ``short_answers`` times."""
    state = {"short": short_answers}

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.test":
            return _succeeded({"vocals": "https://s.test/x/vocals.flac?sig=1"})
        assert "Authorization" not in request.headers  # presigned: no key to the stem host
        if state["short"] > 0:
            state["short"] -= 1
            return httpx.Response(
                200, headers={"Content-Length": str(len(full))}, content=full[:10]
            )
        return httpx.Response(200, content=full)

    return handle


async def test_short_bodies_are_retried(mock_api: Callable[..., Api], tmp_path: Path) -> None:
    full = b"0123456789" * 1000
    api = mock_api(_stem_server(full, short_answers=2), max_retries=3)
    paths = await api.download_stems("split_1", tmp_path)
    assert paths == {"vocals": tmp_path / "vocals.flac"}
    assert paths["vocals"].read_bytes() == full
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vocals.flac"]


async def test_short_bodies_give_download_error_and_no_file(
    mock_api: Callable[..., Api], tmp_path: Path
) -> None:
    api = mock_api(_stem_server(b"x" * 5000, short_answers=99), max_retries=1)
    with pytest.raises(DownloadError, match="truncated"):
        await api.download_stems("split_1", tmp_path)
    assert list(tmp_path.iterdir()) == []


class Boom(BaseException):
    """Stands for Ctrl-C or task cancellation in the middle of a download."""


async def test_an_interrupted_download_leaves_no_temporary_file(
    mock_api: Callable[..., Api], tmp_path: Path
) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.test":
            return _succeeded({"vocals": "https://s.test/vocals.wav"})
        raise Boom

    api = mock_api(handle)
    with pytest.raises(Boom):
        await api.download_stems("split_1", tmp_path)
    assert list(tmp_path.iterdir()) == []


async def test_cancelling_an_async_download_cleans_up(tmp_path: Path) -> None:
    started = asyncio.Event()

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.test":
            return _succeeded({"vocals": "https://s.test/vocals.wav"})
        started.set()
        await asyncio.sleep(30)
        raise AssertionError("not cancelled")

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    api = AsyncAiStemSplitter("k", base_url="https://api.test/v1", http_client=http)
    task = asyncio.ensure_future(api.download_stems("split_1", tmp_path))
    await started.wait()
    assert next(p.name for p in tmp_path.iterdir()).endswith(".part")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list(tmp_path.iterdir()) == []
    await http.aclose()


def _pages(request: httpx.Request) -> httpx.Response:
    cursor = request.url.params.get("cursor")
    pages = {
        None: ([1, 2], "c2"),
        "c2": ([3, 4], "c3"),
        "c3": ([5], None),
    }
    numbers, nxt = pages[cursor]
    items = [{"id": f"split_{n}", "status": "succeeded"} for n in numbers]
    return ok({"items": items, "nextCursor": nxt})


async def test_pagination_walks_every_page_lazily(mock_api: Callable[..., Api]) -> None:
    handler = Recorder(_pages)
    api = mock_api(handler)
    page = await api.list_splits(limit=2, status="succeeded")
    assert [s.id for s in page.items] == ["split_1", "split_2"] and page.next_cursor == "c2"
    assert len(handler.requests) == 1
    everything = await api.walk(page)
    assert [s.id for s in everything] == [f"split_{n}" for n in range(1, 6)]
    assert [r.url.params.get("cursor") for r in handler.requests] == [None, "c2", "c3"]
    assert {r.url.params["status"] for r in handler.requests} == {"succeeded"}
    assert {r.url.params["limit"] for r in handler.requests} == {"2"}
    via_client = await api.collect(api.client.iter_splits(limit=2))
    assert len(via_client) == 5
    # Stopping early fetches no further pages.
    before = len(handler.requests)
    assert len(await api.collect(api.client.iter_splits(limit=2), limit=1)) == 1
    assert len(handler.requests) == before + 1


async def test_pages_refuse_the_wrong_iteration_protocol(mock_api: Callable[..., Api]) -> None:
    api = mock_api(Recorder(_pages))
    page = await api.list_splits(limit=2)
    if api.is_async:
        with pytest.raises(TypeError, match="async for"):
            page.iter_all()
    else:
        with pytest.raises(TypeError, match="iter_all"):
            page.__aiter__()
