"""How the clients reach the network: one TLS context per process, large socket reads.

Two costs that ``httpx`` defaults leave to every client, measured by
``bench/run.py`` (``ingest_vs_curl``):

* **A TLS context per client.** ``httpx`` builds one for every new client, and
  building one loads the CA bundle (about 80 ms of CPU), even when every URL is
  plain http. :func:`shared_ssl_context` builds the default context once per
  process; it holds no per-connection state, so every client may share it.
* **64 KB socket reads.** ``httpcore`` reads a response in pieces of at most
  64 KB (``READ_NUM_BYTES``, no setting), and each piece costs its way through
  ``h11``, ``httpcore`` and ``httpx``: streaming 100 MB from a local server took
  0.49 s, where ``curl`` took 0.43 s. :class:`BulkReadTransport` plugs a network
  backend into ``httpcore`` (its documented extension point) whose streams read
  whatever the socket holds, up to 1 MiB, into one reused buffer: 0.36 s. Over
  TLS a read still returns one record (16 KB at most), so https gains little
  (0.79 -> 0.69 s), but never loses: the buffer is reused, where asking the
  socket for 1 MiB would allocate 1 MiB for every 16 KB record (1.2 s).

Only the plain ``HTTPTransport`` pool is replaced; requests to proxies (from
``HTTP_PROXY`` and friends, or an ``http_client`` of your own) keep ``httpx``'s
own transports.
"""

from __future__ import annotations

import functools
import socket
import ssl
from typing import Any

import httpcore
import httpx

__all__ = ["READ_SIZE", "BulkReadTransport", "shared_ssl_context"]

#: The most one socket read returns (a response body arrives in pieces this large).
READ_SIZE = 1024 * 1024


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The default TLS context (certificate checks on, the CA bundle loaded), built once.

    Honours ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` as ``httpx`` does, as they are
    when it is first built.
    """
    return httpx.create_ssl_context()


class _BulkReadStream(httpcore.NetworkStream):
    """A connected socket (plain or TLS) read into one reused buffer of ``READ_SIZE``.

    Writes, TLS set-up and closing are the wrapped stream's; reads raise
    ``httpcore``'s own exceptions, as its streams do, so ``httpx`` maps them to
    :class:`httpx.ReadTimeout` and :class:`httpx.ReadError` as usual.
    """

    def __init__(self, inner: httpcore.NetworkStream, sock: socket.socket) -> None:
        self._inner = inner
        self._sock = sock
        self._buffer = bytearray(READ_SIZE)
        self._view = memoryview(self._buffer)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            self._sock.settimeout(timeout)
            # At least what was asked for (64 KB), up to the buffer: never an allocation.
            count = self._sock.recv_into(self._buffer)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(exc) from exc
        except OSError as exc:
            raise httpcore.ReadError(exc) from exc
        return bytes(self._view[:count])

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _bulk(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def _bulk(stream: httpcore.NetworkStream) -> httpcore.NetworkStream:
    """``stream`` with bulk reads when it is a bare socket or a TLS socket; else as it is.

    A stream whose socket is not the whole story (TLS inside a TLS tunnel keeps
    its TLS in an ``SSLObject`` beside a plain socket) is left to ``httpcore``.
    """
    sock = stream.get_extra_info("socket")
    if not isinstance(sock, socket.socket):
        return stream
    if isinstance(sock, ssl.SSLSocket) or stream.get_extra_info("ssl_object") is None:
        return _BulkReadStream(stream, sock)
    return stream


class _BulkReadBackend(httpcore.NetworkBackend):
    """``httpcore``'s blocking backend, whose streams read in bulk (:func:`_bulk`)."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        return _bulk(self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        return _bulk(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class BulkReadTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` (HTTP/1.1, no proxy) whose connections read up to 1 MiB at once.

    ``verify`` is an SSL context, True (:func:`shared_ssl_context`) or False (no
    certificate checks); ``limits`` as for ``httpx`` (its defaults). Everything
    else (connection pooling, keep-alive, the mapping of failures to ``httpx``
    exceptions) is ``httpx``'s own.
    """

    def __init__(
        self, *, verify: ssl.SSLContext | bool = True, limits: httpx.Limits | None = None
    ) -> None:
        if isinstance(verify, ssl.SSLContext):
            context = verify
        elif verify:
            context = shared_ssl_context()
        else:
            context = httpx.create_ssl_context(verify=False)
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(verify=context, limits=limits)
        # httpx keeps its connection pool in ``_pool``; ours differs only in its backend.
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_BulkReadBackend(),
        )
