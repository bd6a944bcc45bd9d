"""Stream a URL to a file under a policy: the one implementation, sans-IO.

Stem URLs come from the network, so nothing about them is trusted. A
:class:`DownloadPolicy` says what is allowed: which hosts (``fnmatch`` patterns
such as ``*.example.com``), whether plain http is, how many bytes, how many
redirects and how long the whole download may take. A :class:`Transfer` applies
it to one download, step by step, without doing any I/O itself:

1. every URL, the first and each redirect target, passes :meth:`DownloadPolicy.check_url`
   before anything connects to it (redirects are followed here, by hand, at most
   ``max_redirects`` times, never by the HTTP library);
2. the answer's ``Content-Length`` is checked against ``max_bytes``;
3. every chunk is counted (the cap holds while streaming, whatever the header
   said), hashed (SHA-256) and checked against the deadline;
4. at the end, the bytes received must be what ``Content-Length`` announced.

:func:`save_url` is the operation built on it (temporary file, rename into place
when complete, nothing left behind otherwise). The API client's drivers run it
for ``download_stems`` (blocking and asyncio), and
:func:`~django_aistemsplitter.client.download_file` runs it for the Django app's
ingest, which maps its settings onto a policy. Failures are
:class:`DownloadRefusedError` (not allowed: retrying cannot help),
:class:`IncompleteDownloadError` (cut, short, an error answer: worth a retry)
and :class:`DownloadTimeoutError` (the deadline passed).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from django_aistemsplitter.client._effects import FileSink, Op, Request, Response, TransportFailure
from django_aistemsplitter.client.exceptions import (
    DownloadRefusedError,
    DownloadTimeoutError,
    IncompleteDownloadError,
)

__all__ = [
    "DownloadPolicy",
    "Downloaded",
    "PolicyNames",
    "Transfer",
    "redirect_location",
    "save_url",
    "send_once",
]

#: Given a request and the check of its answer, perform it (and perhaps retry it).
Sender = Callable[[Request, Callable[[Response], Exception | None]], Op[Response]]
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class PolicyNames:
    """What refusal messages call each limit, so a user knows which knob to turn.

    The client names its own arguments; the Django app passes its setting names
    (``ALLOWED_DOWNLOAD_HOSTS`` ...).
    """

    allowed_hosts: str = "allowed_hosts"
    allow_http: str = "allow_http"
    max_bytes: str = "max_bytes"
    deadline: str = "deadline"


@dataclass(frozen=True)
class DownloadPolicy:
    """What a download may do. The defaults allow any https host, any size, any time.

    ``allowed_hosts``: ``None`` allows every host, otherwise the host must match
    one of these ``fnmatch`` patterns (``"*.example.com"`` does not match
    ``example.com`` itself: list both). ``deadline`` bounds the whole download,
    redirects included, in seconds; the per-read timeout of each request is
    shortened to what is left of it.
    """

    allowed_hosts: Iterable[str] | None = None
    allow_http: bool = False
    max_bytes: int | None = None
    max_redirects: int = 3
    deadline: float | None = None
    names: PolicyNames = field(default_factory=PolicyNames)

    def __post_init__(self) -> None:
        # One string or any iterable in; a tuple of lower-case patterns kept.
        hosts = self.allowed_hosts
        if hosts is not None:
            items = [hosts] if isinstance(hosts, str) else list(hosts)
            patterns = tuple(str(h).strip().lower() for h in items if str(h).strip())
            object.__setattr__(self, "allowed_hosts", patterns)

    def check_url(self, url: str) -> None:
        """Refuse a URL whose scheme or host is not allowed (before connecting to it)."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
        except ValueError:  # e.g. a malformed IPv6 literal
            raise DownloadRefusedError("refusing a malformed download URL") from None
        scheme = parts.scheme.lower()
        if scheme != "https" and not (scheme == "http" and self.allow_http):
            hint = f" (set {self.names.allow_http} for plain http)" if scheme == "http" else ""
            raise DownloadRefusedError(
                f"refusing a {scheme or 'scheme-less'} download URL: only https is allowed{hint}"
            )
        if not host:
            raise DownloadRefusedError("refusing a download URL without a host")
        if self.allowed_hosts is not None and not any(
            fnmatch.fnmatchcase(host, pattern) for pattern in self.allowed_hosts
        ):
            raise DownloadRefusedError(
                f"refusing to download from host {host!r}: not in {self.names.allowed_hosts}"
            )

    def start(self, url: str, *, clock: Callable[[], float] = time.monotonic) -> Transfer:
        """A :class:`Transfer` of ``url`` under this policy (``url`` is checked first)."""
        return Transfer(self, url, clock=clock)


@dataclass(frozen=True)
class Downloaded:
    """A complete download: where it is, how many bytes, and their SHA-256."""

    path: Path
    size: int
    sha256: str
    url: str


def _declared_length(headers: Mapping[str, str]) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() else None


def redirect_location(response: Response) -> str | None:
    """The ``Location`` of a redirect answer, else ``None``."""
    if response.status_code not in _REDIRECTS:
        return None
    return response.headers.get("location") or None


class Transfer:
    """One download under a policy, hop by hop: the sans-IO verifier.

    A driver calls :meth:`timeout` before each request, :meth:`begin` with the
    status and headers of a 2xx answer, :meth:`feed` with every chunk of its
    body, :meth:`check` once the body ended, :meth:`follow` for a redirect, and
    reads :meth:`result` at the end. A new :meth:`begin` (a retry) starts the
    count and the hash afresh.
    """

    def __init__(
        self, policy: DownloadPolicy, url: str, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        policy.check_url(url)
        self.policy = policy
        self.url = url
        self.redirects = 0
        self.size = 0
        self._clock = clock
        self._started = clock()
        self._digest = hashlib.sha256()
        self._complete = False

    def remaining(self) -> float | None:
        """Seconds left before the deadline (``None``: no deadline); raises once it passed."""
        deadline = self.policy.deadline
        if deadline is None:
            return None
        left = deadline - (self._clock() - self._started)
        if left <= 0:
            raise DownloadTimeoutError(
                f"download took longer than {self.policy.names.deadline} ({deadline:g}s)"
            )
        return left

    def timeout(self, per_read: float | None) -> float | None:
        """The timeout for the next request: ``per_read``, shortened to the time left."""
        left = self.remaining()
        if left is None:
            return per_read
        return left if per_read is None else min(per_read, left)

    def follow(self, location: str) -> str:
        """Move on to a redirect's target, which must pass the policy too."""
        if self.redirects >= self.policy.max_redirects:
            raise DownloadRefusedError(f"more than {self.policy.max_redirects} redirects")
        target = urljoin(self.url, location)
        self.policy.check_url(target)
        self.redirects += 1
        self.url = target
        self.remaining()
        return target

    def begin(self, status_code: int, headers: Mapping[str, str]) -> None:
        """A success answer arrived: check what it declares, then count from zero."""
        if status_code != 200:
            raise IncompleteDownloadError(f"download answered HTTP {status_code}")
        declared = _declared_length(headers)
        limit = self.policy.max_bytes
        if declared is not None and limit is not None and declared > limit:
            raise DownloadRefusedError(
                f"download is {declared} bytes, over {self.policy.names.max_bytes} ({limit})"
            )
        self.remaining()
        self.size = 0
        self._digest = hashlib.sha256()
        self._complete = False

    def feed(self, chunk: bytes) -> None:
        """One chunk of the body (after content decoding, as written to disk)."""
        self.size += len(chunk)
        limit = self.policy.max_bytes
        if limit is not None and self.size > limit:
            raise DownloadRefusedError(
                f"download is over {self.policy.names.max_bytes} ({limit} bytes)"
            )
        self._digest.update(chunk)
        self.remaining()

    def check(self, response: Response) -> Exception | None:
        """Once the body ended: ``None`` if it is complete (or a redirect), else the error."""
        if 300 <= response.status_code < 400:
            if redirect_location(response) is None:
                return IncompleteDownloadError(
                    f"download answered HTTP {response.status_code} without a usable Location"
                )
            return None
        declared = _declared_length(response.headers)
        if declared is not None and response.body_length != declared:
            return IncompleteDownloadError(
                f"body truncated: got {response.body_length} of {declared} bytes"
            )
        self._complete = True
        return None

    def result(self, path: Path) -> Downloaded:
        if not self._complete:
            raise IncompleteDownloadError("download did not complete")
        return Downloaded(path=path, size=self.size, sha256=self._digest.hexdigest(), url=self.url)


def send_once(request: Request, check: Callable[[Response], Exception | None]) -> Op[Response]:
    """Perform ``request`` once: anything but a complete answer is an incomplete download."""
    reply = yield request
    if isinstance(reply, TransportFailure):
        raise IncompleteDownloadError(f"download broke off: {reply.error.message}") from reply.error
    if reply.status_code >= 400:
        raise IncompleteDownloadError(f"download answered HTTP {reply.status_code}")
    error = check(reply)
    if error is not None:
        raise error
    return reply


def _create_exclusive(target: Path) -> Path:
    """A new, empty, hidden file beside ``target``, created with the usual umask mode.

    ``os.open`` with ``0o666`` lets the process umask apply, so the finished file
    gets the same mode as any new file (``mkstemp`` would leave it ``0600``), and
    ``O_EXCL`` keeps two downloads from sharing it.
    """
    while True:
        path = target.parent / f".{target.name}.{secrets.token_hex(6)}.part"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
        os.close(fd)
        return path


def save_url(
    url: str,
    target: str | os.PathLike[str],
    *,
    policy: DownloadPolicy,
    send: Sender = send_once,
    timeout: float | None = None,
    headers: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Op[Downloaded]:
    """Download ``url`` to ``target`` under ``policy``; the operation the drivers run.

    The body streams into a hidden temporary file beside ``target`` that is
    renamed into place only when complete, so a reader never sees half a file and
    a failure (or a cancellation) leaves nothing behind. ``send`` performs each
    request: :func:`send_once` by default, the API client's retrying ``send`` for
    its own downloads. ``timeout`` is the per-read timeout.
    """
    transfer = policy.start(url, clock=clock)
    destination = Path(target)
    sink = FileSink(_create_exclusive(destination), watcher=transfer)
    try:
        while True:
            request = Request(
                "GET",
                transfer.url,
                headers=dict(headers or {}),
                sink=sink,
                timeout=transfer.timeout(timeout),
            )
            response = yield from send(request, transfer.check)
            location = redirect_location(response)
            if location is None:
                break
            transfer.follow(location)
        sink.close()
        os.replace(sink.path, destination)
    finally:
        sink.close()
        sink.path.unlink(missing_ok=True)
    return transfer.result(destination)
