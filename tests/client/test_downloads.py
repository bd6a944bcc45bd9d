"""The one download policy: hosts, scheme, redirects, size, completeness, deadline, sha256.

The sans-IO verifier is tested directly; ``download_file``/``adownload_file`` and
the clients' ``download_stems`` run it over HTTP against mocked hosts, for the
faults a real server does not produce on demand (a redirect to a forbidden host,
a body over the cap without a Content-Length, a slow stream). The sandbox test
files download real stems through the same code.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from django_aistemsplitter.client import (
    DownloadError,
    DownloadPolicy,
    DownloadRefusedError,
    DownloadTimeoutError,
    IncompleteDownloadError,
    PolicyNames,
    adownload_file,
    download_file,
)
from django_aistemsplitter.client._async import run as async_run
from django_aistemsplitter.client._effects import Response
from django_aistemsplitter.client._sync import run as sync_run
from django_aistemsplitter.client.downloads import save_url
from tests.client.conftest import Api

BODY = bytes(range(256)) * 64  # 16 KiB
SHA = hashlib.sha256(BODY).hexdigest()


# --- the policy and the verifier, without I/O -----------------------------------------


@pytest.mark.parametrize(
    ("url", "policy", "message"),
    [
        ("http://cdn.test/a.wav", DownloadPolicy(), "only https is allowed (set allow_http"),
        ("ftp://cdn.test/a.wav", DownloadPolicy(allow_http=True), "only https is allowed"),
        ("file:///etc/passwd", DownloadPolicy(), "only https"),
        ("cdn.test/a.wav", DownloadPolicy(), "scheme-less"),
        ("https:///a.wav", DownloadPolicy(), "without a host"),
        ("https://[::1/a.wav", DownloadPolicy(), "malformed"),
        ("https://evil.test/a.wav", DownloadPolicy(allowed_hosts=["*.cdn.test"]), "evil.test"),
        ("https://cdn.test/a.wav", DownloadPolicy(allowed_hosts=["*.cdn.test"]), "allowed_hosts"),
        ("https://x.cdn.test.evil/a", DownloadPolicy(allowed_hosts="*.cdn.test"), "not in"),
    ],
)
def test_urls_the_policy_refuses(url: str, policy: DownloadPolicy, message: str) -> None:
    with pytest.raises(DownloadRefusedError, match=re.escape(message)):
        policy.check_url(url)


def test_urls_the_policy_allows() -> None:
    policy = DownloadPolicy(allowed_hosts=["CDN.test", "*.cdn.test"], allow_http=True)
    assert policy.allowed_hosts == ("cdn.test", "*.cdn.test")
    for url in ("https://cdn.test/a", "http://A.CDN.test:8443/b?sig=1", "https://b.a.cdn.test/"):
        policy.check_url(url)
    DownloadPolicy().check_url("https://anything.example/x")  # None: any host over https


def test_messages_name_the_callers_settings() -> None:
    names = PolicyNames(allowed_hosts="HOSTS_SETTING", allow_http="HTTP_SETTING")
    policy = DownloadPolicy(allowed_hosts=[], names=names)
    with pytest.raises(DownloadRefusedError, match="not in HOSTS_SETTING"):
        policy.check_url("https://cdn.test/")
    with pytest.raises(DownloadRefusedError, match="set HTTP_SETTING for plain http"):
        policy.check_url("http://cdn.test/")


def _ok(length: int | None, status: int = 200) -> dict[str, str]:
    return {} if length is None else {"content-length": str(length)}


def test_transfer_counts_hashes_and_checks_completeness() -> None:
    transfer = DownloadPolicy(max_bytes=len(BODY)).start("https://cdn.test/a")
    transfer.begin(200, _ok(len(BODY)))
    for i in range(0, len(BODY), 1000):
        transfer.feed(BODY[i : i + 1000])
    answer = Response(200, _ok(len(BODY)), bytes_received=len(BODY), bytes_decoded=len(BODY))
    assert transfer.check(answer) is None
    result = transfer.result(Path("a"))
    assert (result.size, result.sha256, result.url) == (len(BODY), SHA, "https://cdn.test/a")

    short = Response(200, _ok(len(BODY)), bytes_received=10, bytes_decoded=10)
    error = transfer.check(short)
    assert isinstance(error, IncompleteDownloadError) and "truncated" in str(error)


def test_transfer_enforces_the_size_cap_on_the_header_and_while_streaming() -> None:
    policy = DownloadPolicy(max_bytes=1000)
    with pytest.raises(DownloadRefusedError, match="1001 bytes, over max_bytes"):
        policy.start("https://cdn.test/a").begin(200, _ok(1001))
    transfer = policy.start("https://cdn.test/a")
    transfer.begin(200, {})  # no Content-Length: only the stream can tell
    transfer.feed(b"x" * 1000)
    with pytest.raises(DownloadRefusedError, match="over max_bytes"):
        transfer.feed(b"x")


def test_transfer_follows_at_most_max_redirects_and_checks_every_hop() -> None:
    transfer = DownloadPolicy(allowed_hosts=["*.cdn.test"], max_redirects=2).start(
        "https://a.cdn.test/x/start"
    )
    assert transfer.follow("../moved") == "https://a.cdn.test/moved"
    assert transfer.follow("https://b.cdn.test/again") == "https://b.cdn.test/again"
    with pytest.raises(DownloadRefusedError, match="more than 2 redirects"):
        transfer.follow("https://c.cdn.test/third")
    other = DownloadPolicy(allowed_hosts=["*.cdn.test"]).start("https://a.cdn.test/x")
    with pytest.raises(DownloadRefusedError, match=re.escape("169.254.169.254")):
        other.follow("https://169.254.169.254/latest/meta-data")


def test_transfer_deadline_is_checked_on_every_step() -> None:
    ticks = itertools.count(step=10)  # each look at the clock: 10 s later
    transfer = DownloadPolicy(deadline=35).start("https://cdn.test/a", clock=lambda: next(ticks))
    assert transfer.timeout(30.0) == 25.0  # at 10 s: the read timeout shrinks to what is left
    transfer.begin(200, {})  # 20 s
    transfer.feed(b"x")  # 30 s
    with pytest.raises(DownloadTimeoutError, match=r"longer than deadline \(35s\)"):
        transfer.feed(b"x")  # 40 s
    assert issubclass(DownloadTimeoutError, IncompleteDownloadError)
    assert issubclass(DownloadTimeoutError, TimeoutError)


# --- download_file / adownload_file over (mocked) HTTP ------------------------------------


class Hosts:
    """A mock transport for several hosts; records every request."""

    def __init__(self, routes: dict[str, Callable[[httpx.Request], httpx.Response]]) -> None:
        self.routes = routes
        self.seen: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(str(request.url))
        return self.routes[f"{request.url.host}{request.url.path}"](request)


def redirect(to: str, status: int = 302) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, headers={"Location": to})


def serve(body: bytes = BODY, length: int | None = None) -> Callable[[httpx.Request], Any]:
    """``body``, announced as ``length`` bytes when given."""
    headers = {} if length is None else {"Content-Length": str(length)}
    return lambda request: httpx.Response(200, content=body, headers=headers)


def chunks(*parts: bytes) -> Callable[[httpx.Request], httpx.Response]:
    """A streamed body without Content-Length (sync or async, as the client asks)."""

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Parts(parts))

    return handle


class Parts(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, parts: tuple[bytes, ...]) -> None:
        self.parts = parts

    def __iter__(self) -> Iterator[bytes]:
        yield from self.parts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield part


@pytest.fixture(params=["sync", "async"])
def fetch(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``download_file`` or ``adownload_file`` behind one awaitable call.

    With ``clock=``, the same operation runs through the drivers directly, so a
    test can make time pass without waiting (the public functions use the real
    monotonic clock).
    """

    async def run(hosts: Hosts, url: str, target: Path, clock: Any = None, **kwargs: Any) -> Any:
        transport = httpx.MockTransport(hosts)
        if request.param == "sync":
            with httpx.Client(transport=transport) as http:
                if clock is not None:
                    return sync_run(http, save_url(url, target, clock=clock, **kwargs))
                return download_file(url, target, http=http, **kwargs)
        async with httpx.AsyncClient(transport=transport) as ahttp:
            if clock is not None:
                return await async_run(ahttp, save_url(url, target, clock=clock, **kwargs))
            return await adownload_file(url, target, http=ahttp, **kwargs)

    return run


async def test_a_download_follows_allowed_redirects(fetch: Any, tmp_path: Path) -> None:
    hosts = Hosts(
        {
            "api.cdn.test/stem": redirect("/moved/stem"),
            "api.cdn.test/moved/stem": redirect("https://files.cdn.test/v.wav", 307),
            "files.cdn.test/v.wav": serve(),
        }
    )
    policy = DownloadPolicy(allowed_hosts=["*.cdn.test"])
    got = await fetch(hosts, "https://api.cdn.test/stem", tmp_path / "v.wav", policy=policy)
    assert (got.size, got.sha256, got.url) == (len(BODY), SHA, "https://files.cdn.test/v.wav")
    assert (tmp_path / "v.wav").read_bytes() == BODY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.wav"]


@pytest.mark.parametrize(
    ("routes", "policy", "error", "match"),
    [
        (
            {"a.cdn.test/s": redirect("https://metadata.internal/latest")},
            DownloadPolicy(allowed_hosts=["*.cdn.test"]),
            DownloadRefusedError,
            "metadata.internal",
        ),
        (
            {"a.cdn.test/s": redirect("http://a.cdn.test/plain")},
            DownloadPolicy(),
            DownloadRefusedError,
            "only https",
        ),
        (
            {"a.cdn.test/s": redirect("/s")},
            DownloadPolicy(),
            DownloadRefusedError,
            "more than 3 redirects",
        ),
        (
            {"a.cdn.test/s": serve(length=999_999)},
            DownloadPolicy(max_bytes=len(BODY)),
            DownloadRefusedError,
            "over max_bytes",
        ),
        (
            {"a.cdn.test/s": chunks(b"x" * 600, b"x" * 600, b"x" * 600)},
            DownloadPolicy(max_bytes=1000),
            DownloadRefusedError,
            "over max_bytes",
        ),
        (
            {"a.cdn.test/s": serve(BODY[:100], length=len(BODY))},
            DownloadPolicy(),
            IncompleteDownloadError,
            "truncated: got 100 of 16384",
        ),
        (
            {"a.cdn.test/s": lambda r: httpx.Response(403, text="expired")},
            DownloadPolicy(),
            IncompleteDownloadError,
            "HTTP 403",
        ),
        (
            {"a.cdn.test/s": lambda r: httpx.Response(302)},
            DownloadPolicy(),
            IncompleteDownloadError,
            "without a usable Location",
        ),
        (
            {"a.cdn.test/s": lambda r: httpx.Response(206, content=b"x")},
            DownloadPolicy(),
            IncompleteDownloadError,
            "HTTP 206",
        ),
        (
            {"a.cdn.test/s": lambda r: httpx.Response(500, content=b"e" * 100_000)},
            DownloadPolicy(),
            IncompleteDownloadError,
            "over 65536 bytes",
        ),
    ],
    ids=[
        "redirect-host",
        "redirect-http",
        "redirect-loop",
        "declared-size",
        "streamed-size",
        "short",
        "http-error",
        "no-location",
        "partial",
        "huge-error-body",
    ],
)
async def test_refused_and_broken_downloads_leave_nothing(
    fetch: Any,
    tmp_path: Path,
    routes: dict[str, Any],
    policy: DownloadPolicy,
    error: type[DownloadError],
    match: str,
) -> None:
    hosts = Hosts(routes)
    with pytest.raises(error, match=match):
        await fetch(hosts, "https://a.cdn.test/s", tmp_path / "s.wav", policy=policy)
    assert list(tmp_path.iterdir()) == []
    assert all("a.cdn.test" in url for url in hosts.seen)  # no forbidden hop was contacted
    assert len(hosts.seen) <= 4


async def test_a_host_that_cannot_be_reached_is_an_incomplete_download(
    fetch: Any, tmp_path: Path
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(IncompleteDownloadError, match=r"broke off.*connection refused"):
        await fetch(Hosts({"a.cdn.test/s": refuse}), "https://a.cdn.test/s", tmp_path / "s")
    assert list(tmp_path.iterdir()) == []


async def test_the_deadline_stops_a_slow_stream(fetch: Any, tmp_path: Path) -> None:
    # A long trickle; the transfer's clock (not the wall clock) says 4 s pass per look.
    ticks = itertools.count(step=4.0)
    hosts = Hosts({"a.cdn.test/s": chunks(*([b"x" * 10] * 1000))})
    with pytest.raises(DownloadTimeoutError, match=r"longer than deadline \(60s\)"):
        await fetch(
            hosts,
            "https://a.cdn.test/s",
            tmp_path / "s",
            policy=DownloadPolicy(deadline=60),
            clock=lambda: next(ticks),
        )
    assert list(tmp_path.iterdir()) == []
    assert len(hosts.seen) == 1  # a deadline is not retried


# --- the clients' download_stems use the same policy ----------------------------------------


def _stems_host(stem_routes: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.test":
            split = {
                "id": "split_1",
                "status": "succeeded",
                "progress": 1.0,
                "stems": {"vocals": "https://s.test/vocals.wav"},
            }
            return httpx.Response(200, json={"success": True, "data": split})
        return stem_routes[f"{request.url.host}{request.url.path}"](request)

    return handle


async def test_download_stems_follows_a_redirect_checking_it(
    mock_api: Callable[..., Api], tmp_path: Path
) -> None:
    api = mock_api(
        _stems_host(
            {
                "s.test/vocals.wav": redirect("https://bucket.s.test/v?sig=1"),
                "bucket.s.test/v": serve(),
            }
        )
    )
    paths = await api.download_stems("split_1", tmp_path)
    assert paths["vocals"].read_bytes() == BODY


async def test_download_stems_refuses_a_redirect_to_plain_http(
    mock_api: Callable[..., Api], tmp_path: Path
) -> None:
    seen: list[str] = []

    def evil(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, content=b"pwned")

    api = mock_api(
        _stems_host({"s.test/vocals.wav": redirect("http://evil.test/x"), "evil.test/x": evil})
    )
    with pytest.raises(DownloadRefusedError, match="only https"):
        await api.download_stems("split_1", tmp_path)
    assert seen == [] and list(tmp_path.iterdir()) == []


async def test_a_client_download_policy_limits_hosts(
    mock_api: Callable[..., Api], tmp_path: Path
) -> None:
    api = mock_api(
        _stems_host({"s.test/vocals.wav": serve()}),
        download_policy=DownloadPolicy(allowed_hosts=["cdn.example"]),
    )
    with pytest.raises(DownloadRefusedError, match=re.escape("'s.test': not in allowed_hosts")):
        await api.download_stems("split_1", tmp_path)
    assert list(tmp_path.iterdir()) == []


async def test_a_stem_host_error_is_a_download_error(
    mock_api: Callable[..., Api], tmp_path: Path
) -> None:
    api = mock_api(_stems_host({"s.test/vocals.wav": lambda r: httpx.Response(404)}))
    with pytest.raises(IncompleteDownloadError, match=re.escape("could not download vocals.wav")):
        await api.download_stems("split_1", tmp_path)
    assert list(tmp_path.iterdir()) == []
