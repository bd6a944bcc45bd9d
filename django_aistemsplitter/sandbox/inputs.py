"""Turning a split's ``input`` into a local audio file, checked before the split exists.

The hosted service refuses non-audio and oversized input when the split is
created, not later, so the sandbox fetches ``direct_url`` input and probes every
input up front and answers 413/422 right away.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from django_aistemsplitter.client._transport import shared_ssl_context
from django_aistemsplitter.engines.audio import AudioInfo, probe
from django_aistemsplitter.exceptions import AudioDecodeError
from django_aistemsplitter.sandbox.errors import ApiError
from django_aistemsplitter.sandbox.store import Store, Upload, new_id

FETCH_TIMEOUT_SECONDS = 30.0
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class ResolvedInput:
    path: Path
    filename: str
    info: AudioInfo


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"input.{name} must be a non-empty string")
    return value.strip()


def check_http_url(url: str, field_name: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(400, f"{field_name} must be an http(s) URL")
    return url


def _filename_from_url(url: str) -> str:
    name = posixpath.basename(unquote(urlsplit(url).path))
    return name or "audio"


def fetch_url(url: str, dest: Path, limit: int) -> None:
    """Download ``url`` into ``dest``: http(s) only, at most ``limit`` bytes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with (
            httpx.Client(
                timeout=FETCH_TIMEOUT_SECONDS,
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                verify=shared_ssl_context(),  # not the CA bundle loaded again per input
            ) as http,
            http.stream("GET", url) as response,
        ):
            _check_fetched(response, limit)
            _copy_capped(response.iter_bytes(), dest, limit)
    except httpx.HTTPError as exc:
        dest.unlink(missing_ok=True)
        raise ApiError(400, f"could not fetch input.url: {type(exc).__name__}") from None


def _check_fetched(response: httpx.Response, limit: int) -> None:
    if response.status_code >= 400:
        raise ApiError(
            400,
            f"fetching input.url answered HTTP {response.status_code}",
            details={"status": response.status_code},
        )
    declared = int(response.headers.get("Content-Length") or 0)
    if declared > limit:
        raise ApiError(
            413,
            f"the audio at input.url is over {limit} bytes",
            details={"limit": limit, "size": declared},
        )


def _copy_capped(chunks: Any, dest: Path, limit: int) -> None:
    size = 0
    with dest.open("wb") as out:
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                out.close()
                dest.unlink(missing_ok=True)
                raise ApiError(
                    413, f"the audio at input.url is over {limit} bytes", details={"limit": limit}
                )
            out.write(chunk)


def probe_audio(path: Path) -> AudioInfo:
    try:
        return probe(path)
    except AudioDecodeError as exc:
        raise ApiError(422, f"the input is not audio the service can decode ({exc})") from None


def resolve_input(
    raw: Any,
    store: Store,
    data_dir: Path,
    max_direct_bytes: int,
    *,
    own_upload: Callable[[str], Upload | None] = lambda url: None,
) -> ResolvedInput:
    """Validate ``input`` and return the audio file it names, probed.

    ``own_upload`` recognises the server's own ``audioUrl`` links: a
    ``direct_url`` input naming one is the uploaded file, whatever its size,
    and is never fetched through the gateway's ``max_direct_bytes`` limit.
    """
    if not isinstance(raw, dict):
        raise ApiError(400, "input must be an object with a type")
    kind = raw.get("type")
    if kind == "direct_url":
        url = check_http_url(_string(raw.get("url"), "url"), "input.url")
        upload = own_upload(url)
        if upload is not None:
            return _uploaded(upload)
        dest = data_dir / "inputs" / new_id("in") / "source"
        fetch_url(url, dest, max_direct_bytes)
        return ResolvedInput(dest, _filename_from_url(url), probe_audio(dest))
    if kind == "uploaded_file":
        return _uploaded(_find_upload(raw, store))
    raise ApiError(400, "input.type must be 'direct_url' or 'uploaded_file'")


def _uploaded(upload: Upload) -> ResolvedInput:
    if upload.size is None:
        raise ApiError(400, f"upload {upload.id} has no data yet: PUT it to its uploadUrl")
    return ResolvedInput(upload.path, upload.filename, probe_audio(upload.path))


def _find_upload(raw: dict[str, Any], store: Store) -> Upload:
    """By ``uploadId``, or by the ``storageKey`` the published SDK sends."""
    if raw.get("uploadId") is not None:
        return store.get_upload(_string(raw.get("uploadId"), "uploadId"))
    if raw.get("storageKey") is not None:
        upload = store.find_upload_by_key(_string(raw.get("storageKey"), "storageKey"))
        if upload is None:
            raise ApiError(404, "no upload has that storageKey")
        return upload
    raise ApiError(400, "input.uploadId is required for an uploaded_file input")
