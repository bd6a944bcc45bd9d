"""The ingest's stem downloads are the client's download policy, fed by this app's settings.

The rules themselves are tested in ``tests/client/test_downloads.py``; here: the
settings reach the policy, refusals name the settings, and a redirect to a host
outside ``ALLOWED_DOWNLOAD_HOSTS`` is refused before it is contacted.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from django_aistemsplitter import ingest
from django_aistemsplitter.exceptions import DownloadRefusedError, IncompleteDownloadError

BODY = b"RIFF" + bytes(4000)


@pytest.fixture
def stem_settings(settings: Any) -> dict[str, Any]:
    settings.AISTEMSPLITTER = {
        **settings.AISTEMSPLITTER,
        "ALLOWED_DOWNLOAD_HOSTS": ["*.cdn.test"],
        "ALLOW_HTTP_DOWNLOADS": False,
        "MAX_STEM_BYTES": 10_000,
        "DOWNLOAD_TIMEOUT": 120,
    }
    return settings.AISTEMSPLITTER


def test_settings_become_the_policy(settings: Any, stem_settings: dict[str, Any]) -> None:
    policy = ingest.download_policy()
    assert policy.allowed_hosts == ("*.cdn.test",)
    assert (policy.allow_http, policy.max_bytes, policy.deadline) == (False, 10_000, 120.0)
    assert policy.max_redirects == ingest.MAX_REDIRECTS
    assert ingest.download_policy(max_bytes=5).max_bytes == 5
    settings.AISTEMSPLITTER = {**stem_settings, "DOWNLOAD_TIMEOUT": None}
    assert ingest.download_policy().deadline is None
    settings.AISTEMSPLITTER = {**stem_settings, "ALLOWED_DOWNLOAD_HOSTS": None}
    settings.AISTEMSPLITTER["BASE_URL"] = "https://api.example.com/v1"
    assert ingest.download_policy().allowed_hosts == ("api.example.com", "*.api.example.com")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://a.cdn.test/v.wav", "set ALLOW_HTTP_DOWNLOADS for plain http"),
        ("https://evil.test/v.wav", "not in ALLOWED_DOWNLOAD_HOSTS"),
    ],
)
def test_check_url_names_the_setting(stem_settings: dict[str, Any], url: str, message: str) -> None:
    with pytest.raises(DownloadRefusedError, match=message):
        ingest.check_url(url)


def _client(routes: dict[str, httpx.Response], seen: list[str]) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        return routes[f"{request.url.host}{request.url.path}"]

    return httpx.Client(transport=httpx.MockTransport(handle))


def test_download_follows_allowed_redirects_and_hashes(
    stem_settings: dict[str, Any], tmp_path: Path
) -> None:
    seen: list[str] = []
    routes = {
        "a.cdn.test/v.wav": httpx.Response(302, headers={"Location": "https://b.cdn.test/v"}),
        "b.cdn.test/v": httpx.Response(200, content=BODY),
    }
    with _client(routes, seen) as client:
        size, sha256 = ingest.download(
            "https://a.cdn.test/v.wav", tmp_path / "v.wav", max_bytes=10_000, client=client
        )
    assert (size, sha256) == (len(BODY), hashlib.sha256(BODY).hexdigest())
    assert (tmp_path / "v.wav").read_bytes() == BODY and seen == ["a.cdn.test", "b.cdn.test"]


@pytest.mark.parametrize(
    ("routes", "error", "message"),
    [
        (
            {"a.cdn.test/v.wav": httpx.Response(302, headers={"Location": "https://10.0.0.1/x"})},
            DownloadRefusedError,
            "not in ALLOWED_DOWNLOAD_HOSTS",
        ),
        (
            {"a.cdn.test/v.wav": httpx.Response(200, content=bytes(20_000))},
            DownloadRefusedError,
            "over MAX_STEM_BYTES",
        ),
        (
            {"a.cdn.test/v.wav": httpx.Response(403)},
            IncompleteDownloadError,
            "HTTP 403",
        ),
    ],
    ids=["redirect-host", "size", "expired"],
)
def test_download_refusals(
    stem_settings: dict[str, Any],
    tmp_path: Path,
    routes: dict[str, httpx.Response],
    error: type[Exception],
    message: str,
) -> None:
    seen: list[str] = []
    with _client(routes, seen) as client, pytest.raises(error, match=message):
        ingest.download(
            "https://a.cdn.test/v.wav", tmp_path / "v.wav", max_bytes=10_000, client=client
        )
    assert seen == ["a.cdn.test"] and list(tmp_path.iterdir()) == []
