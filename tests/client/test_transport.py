"""The clients' transport: large socket reads, one TLS context, httpx's own errors.

Real servers on loopback (``http.server`` in a thread, plain and with TLS from a
certificate made here), real sockets: what the transport changes is how the
socket is read, so nothing here is mocked.
"""

from __future__ import annotations

import datetime
import hashlib
import http.server
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from django_aistemsplitter.client import AiStemSplitter, DownloadPolicy, download_file
from django_aistemsplitter.client._transport import (
    READ_SIZE,
    BulkReadTransport,
    shared_ssl_context,
)

BODY = hashlib.sha256(b"seed").digest() * (8 * 1024 * 1024 // 32)  # 8 MiB, not compressible


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = BODY if self.path == "/big" else b"small"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _serve(context: ssl.SSLContext | None = None) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if context else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def plain_url() -> Iterator[str]:
    yield from _serve()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (certificate, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_url(certificate: tuple[Path, Path]) -> Iterator[str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    yield from _serve(context)


def _chunks(client: httpx.Client, url: str) -> list[int]:
    with client.stream("GET", url) as response:
        response.raise_for_status()
        sizes, digest = [], hashlib.sha256()
        for chunk in response.iter_raw():
            sizes.append(len(chunk))
            digest.update(chunk)
    assert digest.digest() == hashlib.sha256(BODY).digest()
    return sizes


def test_plain_http_reads_more_than_httpcores_64_kb(plain_url: str) -> None:
    with httpx.Client(transport=BulkReadTransport()) as ours, httpx.Client() as default:
        bulk = _chunks(ours, plain_url + "/big")
        stock = _chunks(default, plain_url + "/big")
    # httpx's own transport never hands over more than one 64 KB read at a time.
    assert max(stock) <= 64 * 1024
    assert max(bulk) > 64 * 1024
    assert max(bulk) <= READ_SIZE
    assert len(bulk) < len(stock)


def test_tls_works_with_a_given_context_and_refuses_an_unknown_certificate(
    tls_url: str, certificate: tuple[Path, Path]
) -> None:
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    with httpx.Client(transport=BulkReadTransport(verify=trusting)) as client:
        _chunks(client, tls_url + "/big")
    # The default (shared) context checks certificates: a self-signed one is refused.
    with httpx.Client(transport=BulkReadTransport()) as client, pytest.raises(httpx.ConnectError):
        client.get(tls_url + "/small")
    with httpx.Client(transport=BulkReadTransport(verify=False)) as client:
        assert client.get(tls_url + "/small").content == b"small"


def test_a_silent_server_is_httpx_read_timeout() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    try:
        with (
            httpx.Client(transport=BulkReadTransport(), timeout=0.3) as client,
            pytest.raises(httpx.ReadTimeout),
        ):
            client.get(url)
    finally:
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()


def test_a_connection_cut_mid_body_is_an_httpx_error() -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def answer_half() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1000)
        conn.close()

    thread = threading.Thread(target=answer_half, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    try:
        with (
            httpx.Client(transport=BulkReadTransport()) as client,
            pytest.raises(httpx.RemoteProtocolError),
        ):
            client.get(url)
    finally:
        thread.join(5)
        listener.close()


def test_download_file_and_the_clients_use_it(plain_url: str, tmp_path: Path) -> None:
    policy = DownloadPolicy(allow_http=True)
    got = download_file(plain_url + "/big", tmp_path / "big", policy=policy)
    assert got.size == len(BODY)
    assert got.sha256 == hashlib.sha256(BODY).hexdigest()
    assert (tmp_path / "big").read_bytes() == BODY
    with AiStemSplitter("ast_test", base_url=plain_url + "/v1") as client:
        assert isinstance(client._http._transport, BulkReadTransport)


def test_one_tls_context_per_process() -> None:
    assert shared_ssl_context() is shared_ssl_context()
    assert shared_ssl_context().verify_mode == ssl.CERT_REQUIRED
    assert BulkReadTransport()._pool._ssl_context is shared_ssl_context()
