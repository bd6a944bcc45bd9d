"""Small tools the sandbox tests share: an API session, polling, a webhook receiver
and a static file server, all on loopback and all real HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.sandbox_process import SandboxProcess
from tests.waiting import wait_for

TERMINAL = {"succeeded", "failed"}


def api(sandbox: SandboxProcess, key: str | None = None) -> httpx.Client:
    """A client for the sandbox's /v1 API with its bearer key."""
    return httpx.Client(
        base_url=sandbox.base_url,
        headers={"Authorization": f"Bearer {key or sandbox.api_key}"},
        timeout=30,
    )


def wait_terminal(client: httpx.Client, split_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        data = client.get(f"/audio/splits/{split_id}").json()["data"]
        return data if data["status"] in TERMINAL else None

    return wait_for(done)


def stats(sandbox: SandboxProcess) -> dict[str, Any]:
    response = httpx.get(
        f"{sandbox.root_url}/_sandbox/stats",
        headers={"Authorization": f"Bearer {sandbox.api_key}"},
    )
    assert response.status_code == 200
    return response.json()["data"]


def upload(client: httpx.Client, path: Path) -> dict[str, Any]:
    """Presign, then PUT the bytes; returns the presign data."""
    size = path.stat().st_size
    presigned = client.post(
        "/audio/uploads",
        json={"filename": path.name, "contentType": "audio/wav", "contentLength": size},
    )
    assert presigned.status_code == 201, presigned.text
    data = presigned.json()["data"]
    put = httpx.put(data["uploadUrl"], content=path.read_bytes(), headers=data["uploadHeaders"])
    assert put.status_code == 200, put.text
    return data


def split_from_upload(client: httpx.Client, path: Path, **fields: Any) -> dict[str, Any]:
    data = upload(client, path)
    body = {"input": {"type": "uploaded_file", "uploadId": data["uploadId"]}, **fields}
    created = client.post("/audio/splits", json=body)
    assert created.status_code == 201, created.text
    return created.json()["data"]


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The contract's error envelope with ``status`` and ``code``, and a request id."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "details" in body["error"]
    assert response.headers.get("X-Request-Id")
    return body["error"]


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook endpoint: records each POST and answers from ``statuses`` (then 200)."""

    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_status(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else 200

    def record(self, item: Received) -> None:
        with self.lock:
            self.received.append(item)

    def events(self) -> list[Received]:
        with self.lock:
            return list(self.received)


def _receiver_handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = receiver.next_status()
            receiver.record(Received(body, {k.lower(): v for k, v in self.headers.items()}))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def webhook_receiver(statuses: list[int] | None = None) -> Iterator[Receiver]:
    receiver = Receiver(statuses=list(statuses or []))
    with serving(_receiver_handler(receiver)) as root:
        receiver.url = root + "/hook"
        yield receiver


def _file_handler(directory: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            path = directory / self.path.lstrip("/").split("?")[0]
            if not path.is_file():
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def file_server(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP (for ``direct_url`` inputs); yields the root URL."""
    with serving(_file_handler(directory)) as root:
        yield root
