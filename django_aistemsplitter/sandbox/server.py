"""The HTTP side: a threaded stdlib server, the per-request pipeline, and SandboxServer.

Each request goes: match route -> count it -> read the body -> authenticate ->
(api routes) latency and injected faults -> handler -> send -> one log line. The
log line names the route template, never the raw path, because signed URLs carry
their signature in the query string.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import shutil
import socket
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, urlsplit

from django_aistemsplitter import contract
from django_aistemsplitter.sandbox.api import SandboxApp
from django_aistemsplitter.sandbox.bodies import CHUNK, is_chunked, read_small_body
from django_aistemsplitter.sandbox.browser import cors_headers, preflight_headers
from django_aistemsplitter.sandbox.config import SandboxConfig
from django_aistemsplitter.sandbox.errors import ApiError
from django_aistemsplitter.sandbox.faults import ApiFault, Faults
from django_aistemsplitter.sandbox.processing import Processor
from django_aistemsplitter.sandbox.routing import (
    API,
    CONTROL,
    SIGNED,
    Request,
    Response,
    Route,
    Router,
)
from django_aistemsplitter.sandbox.signed_urls import UrlSigner
from django_aistemsplitter.sandbox.store import Stats, Store
from django_aistemsplitter.sandbox.webhooks import WebhookDispatcher
from django_aistemsplitter.sandbox.wire import Links

logger = logging.getLogger("django_aistemsplitter.sandbox")

#: A throttled download is written in chunks of this fraction of a second's worth.
THROTTLE_TICKS = 10

DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    app: SandboxApp
    router: Router

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up is normal; anything else is worth a traceback."""
        import sys

        if isinstance(sys.exc_info()[1], DISCONNECTS):
            return
        logger.exception("error while serving a request")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are written separately; without TCP_NODELAY, Nagle's
    # algorithm and delayed ACKs add ~40 ms to every response.
    disable_nagle_algorithm = True
    server_version = "AiStemSplitterSandbox/1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the stdlib's log: it would print raw paths with signatures."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._preflight()

    # --- pipeline ------------------------------------------------------------
    def _dispatch(self) -> None:
        started = time.monotonic()
        request_id = "req_" + secrets.token_hex(8)
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query)),
            headers=self.headers,
            stream=self.rfile,
        )
        label = f"{self.command} (unmatched)"
        signed = False
        try:
            route, request.params = self.server.router.match(self.command, parts.path)
            label = route.label
            signed = route.kind == SIGNED
            self.server.app.stats.count_request(label)
            response = self._handle(route, request)
        except ApiError as exc:
            response = Response(status=exc.status, payload=exc.envelope(), headers=exc.headers)
        except Exception:
            logger.exception("%s failed", label)
            response = Response(status=500, payload=ApiError(500, "internal error").envelope())
        if signed:
            # Errors too: a page can only read why its upload failed with these.
            response.headers = {**cors_headers(self.headers), **response.headers}
        if not request.body_consumed and self._has_body():
            self.close_connection = True
        try:
            self._send(response, request_id)
        except DISCONNECTS:
            self.close_connection = True
        elapsed = (time.monotonic() - started) * 1000
        logger.info("%s %d %.1fms", label, response.status, elapsed)

    def _preflight(self) -> None:
        """A browser's CORS preflight: allowed on the signed routes, 404 elsewhere.

        The API routes take the account's bearer key and are for servers, so a
        page gets no CORS permission for them (see :mod:`.browser`).
        """
        request_id = "req_" + secrets.token_hex(8)
        path = urlsplit(self.path).path
        routes = [r for r in self.server.router.routes_at(path) if r.kind == SIGNED]
        if self._has_body():
            self.close_connection = True
        if not routes:
            error = ApiError(404, "no such endpoint")
            response = Response(status=404, payload=error.envelope())
        else:
            headers = preflight_headers(self.headers, (r.method for r in routes))
            response = Response(status=204, headers=headers)
        self._send(response, request_id)
        logger.info(
            "OPTIONS %s %d", routes[0].template if routes else "(unmatched)", response.status
        )

    def _has_body(self) -> bool:
        return is_chunked(self.headers) or (self.headers.get("Content-Length") or "0") != "0"

    def _handle(self, route: Route, request: Request) -> Response:
        app = self.server.app
        if route.kind in (API, CONTROL):
            request.body = read_small_body(self.rfile, self.headers)
            request.body_consumed = True
            self._authenticate()
        if route.kind != API:
            return route.handler(request)
        if app.config.latency_ms:
            time.sleep(app.config.latency_ms / 1000)
        fault = app.faults.api_fault()
        if fault is ApiFault.RATE_LIMITED:
            retry_after = str(app.config.retry_after_seconds)
            raise ApiError(
                429, "too many requests (injected)", headers={"Retry-After": retry_after}
            )
        if fault is ApiFault.ERROR_BEFORE:
            raise ApiError(500, "internal error (injected)")
        response = route.handler(request)
        if fault is ApiFault.ERROR_AFTER:
            raise ApiError(500, "internal error (injected after the request was handled)")
        return response

    def _authenticate(self) -> None:
        header = self.headers.get(contract.AUTH_HEADER) or ""
        scheme, _, token = header.partition(" ")
        expected = self.server.app.config.api_key
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), expected.encode()
        ):
            raise ApiError(
                401, "missing or invalid API key", headers={"WWW-Authenticate": "Bearer"}
            )

    # --- output --------------------------------------------------------------
    def _send(self, response: Response, request_id: str) -> None:
        if response.file is not None:
            self._send_file(response, request_id)
            return
        if response.status == 204:
            self.send_response(204)
            self.send_header(contract.REQUEST_ID_HEADER, request_id)
            for name, value in response.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            return
        body = json.dumps(response.payload, separators=(",", ":")).encode()
        self.send_response(response.status)
        self._common_headers(response, request_id, "application/json", len(body))
        self.end_headers()
        self.wfile.write(body)

    def _common_headers(
        self, response: Response, request_id: str, content_type: str, length: int
    ) -> None:
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header(contract.REQUEST_ID_HEADER, request_id)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")

    def _send_file(self, response: Response, request_id: str) -> None:
        """Stream from disk; an injected truncation sends part, then hangs up.

        ``bytes_per_second`` paces the body (``--download-kbps``): small chunks,
        each sent when the running total is due, so a client sees a slow, steady
        transfer it can be interrupted in the middle of.
        """
        assert response.file is not None
        stats = self.server.app.stats
        stats.download_started()
        outcome = "broken"
        try:
            with response.file.open("rb") as f:
                first, size = 0, response.file.stat().st_size
                if response.file_range is not None:
                    first, last = response.file_range
                    size = last - first + 1
                    f.seek(first)
                cut = response.truncate_at
                if cut is not None:
                    cut = min(cut, size)
                    self.close_connection = True
                self.send_response(response.status)
                self._common_headers(response, request_id, response.content_type, size)
                self.end_headers()
                self._copy(f, size if cut is None else cut, response.bytes_per_second)
            self.wfile.flush()
            outcome = "completed" if cut is None else "truncated"
        finally:
            stats.download_ended(outcome)

    def _copy(self, f: BinaryIO, length: int, rate: int | None) -> None:
        """Write ``length`` bytes of ``f``, at most ``rate`` bytes per second if set."""
        step = CHUNK if rate is None else max(1, min(CHUNK, rate // THROTTLE_TICKS))
        started = time.monotonic()
        sent = 0
        while sent < length:
            chunk = f.read(min(step, length - sent))
            if not chunk:
                break
            if rate is not None:
                due = started + sent / rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            self.wfile.write(chunk)
            sent += len(chunk)


class SandboxServer:
    """The sandbox in a background thread: ``SandboxServer(config).start()`` ... ``.stop()``."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._temp_dir: str | None = None
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.processor: Processor | None = None
        self.webhooks: WebhookDispatcher | None = None
        self.app: SandboxApp | None = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the sandbox is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The root URL (``/healthz`` lives here)."""
        if self.config.public_url:
            return self.config.public_url.rstrip("/")
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What a client takes as its base URL: the root plus ``/v1``."""
        return self.url + "/v1"

    def _data_dir(self) -> Path:
        if self.config.data_dir is not None:
            self.config.data_dir.mkdir(parents=True, exist_ok=True)
            return self.config.data_dir
        self._temp_dir = tempfile.mkdtemp(prefix="aistemsplitter-sandbox-")
        return Path(self._temp_dir)

    def bind(self) -> SandboxServer:
        """Open the socket and wire the parts together, without serving yet."""
        config = self.config
        httpd = _HTTPServer((config.host, config.port), _Handler)
        self._httpd = httpd
        data_dir = self._data_dir()
        stats = Stats()
        store = Store(config.credits)
        links = Links(self.url, UrlSigner(), config.url_ttl_seconds)
        app = SandboxApp(config, data_dir, links, store, stats, Faults(config))
        self.webhooks = WebhookDispatcher(config, stats, app.render)
        self.processor = Processor(
            store,
            config.engine,
            data_dir,
            config.workers,
            config.processing_seconds,
            self.webhooks.split_finished,
        )
        app.submit = self.processor.submit
        httpd.app, httpd.router, self.app = app, app.router(), app
        self.webhooks.start()
        return self

    def start(self) -> SandboxServer:
        """Bind and serve from a daemon thread; returns at once."""
        self.bind()
        assert self._httpd is not None
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="sandbox-http", daemon=True
        )
        self._thread.start()
        return self

    def serve_bound(self) -> None:
        """Serve in this thread until :meth:`stop` or an interrupt (after :meth:`bind`)."""
        if self._httpd is None:
            self.bind()
        assert self._httpd is not None
        self._httpd.serve_forever()

    def stop(self) -> None:
        if self._httpd is not None:
            if self._thread is not None:
                self._httpd.shutdown()
                self._thread.join(timeout=5)
            self._httpd.server_close()
        if self.processor is not None:
            self.processor.stop()
        if self.webhooks is not None:
            self.webhooks.stop()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None
        self._httpd = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
