"""Start the sandbox API server as a real subprocess on a free localhost port."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SandboxProcess:
    """A running sandbox; ``base_url`` ends in ``/v1`` like the hosted API's."""

    port: int
    api_key: str
    webhook_secret: str
    data_dir: Path
    options: dict[str, Any] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def start(self, timeout: float = 30.0) -> SandboxProcess:
        args = [
            sys.executable,
            "-m",
            "django_aistemsplitter.sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--api-key",
            self.api_key,
            "--webhook-secret",
            self.webhook_secret,
            "--data-dir",
            str(self.data_dir),
        ]
        for key, value in self.options.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                args.append(flag)
            elif value is not False and value is not None:
                args.extend([flag, str(value)])
        self.log_path = self.data_dir / "sandbox.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sandbox exited early:\n{self.log()}")
            try:
                httpx.get(f"{self.root_url}/healthz", timeout=1.0)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"sandbox did not start within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_sandbox(data_dir: Path, **options: Any) -> SandboxProcess:
    """Start a sandbox with fresh credentials; ``options`` map to CLI switches."""
    options.setdefault("engine", "passthrough")
    return SandboxProcess(
        port=free_port(),
        api_key="ast_test_" + secrets.token_hex(12),
        webhook_secret="whsec_" + secrets.token_hex(16),
        data_dir=data_dir,
        options=options,
    ).start()
