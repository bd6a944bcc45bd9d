"""The management command, the CLI's parser and the in-process server class."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from django_aistemsplitter.sandbox import SandboxConfig, SandboxServer
from django_aistemsplitter.sandbox.config import build_parser, config_from_options
from tests.sandbox_process import free_port
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def _option_strings(parser: object) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}  # type: ignore[attr-defined]


def test_command_declares_every_cli_option() -> None:
    from django_aistemsplitter.management.commands.aistemsplitter_sandbox import Command

    command_parser = Command().create_parser("manage.py", "aistemsplitter_sandbox")
    cli = _option_strings(build_parser()) - {"-h", "--help"}
    assert cli <= _option_strings(command_parser)
    options = vars(command_parser.parse_args(["--fail-rate", "0.25", "--drop-webhooks"]))
    config = config_from_options(options)
    assert (config.fail_rate, config.drop_webhooks, config.port) == (0.25, True, 8765)


def test_rates_are_validated() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--fail-rate", "1.5"])


def test_key_and_secret_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AISTEMSPLITTER_API_KEY", "ast_test_env")
    monkeypatch.delenv("AISTEMSPLITTER_WEBHOOK_SECRET", raising=False)
    config = config_from_options(vars(build_parser().parse_args([])))
    assert config.api_key == "ast_test_env"
    assert config.webhook_secret.startswith("whsec_")
    assert config.generated == ("webhook_secret",)


def test_management_command_serves(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.sandbox.command_settings",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    }
    args = [
        sys.executable,
        "-m",
        "django",
        "aistemsplitter_sandbox",
        "--port",
        str(port),
        "--api-key",
        "ast_test_cmd",
        "--engine",
        "passthrough",
        "--data-dir",
        str(tmp_path),
    ]
    log = tmp_path / "log.txt"
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    try:

        def up() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=30, interval=0.1)
        response = httpx.get(
            f"http://127.0.0.1:{port}/v1/credits",
            headers={"Authorization": "Bearer ast_test_cmd"},
        )
        assert response.status_code == 200
        assert response.json()["data"]["unit"] == "seconds"
    finally:
        process.terminate()
        process.wait(10)
    text = log.read_text()
    assert f"listening on http://127.0.0.1:{port}/v1" in text
    assert "generated API key" not in text
    assert "generated webhook secret" in text


def test_in_process_server_with_a_temporary_data_dir() -> None:
    config = SandboxConfig(port=0, api_key="ast_test_inproc", engine="passthrough")
    with SandboxServer(config) as server:
        assert server.base_url.endswith("/v1")
        root = server.url
        data_dir = server.app.data_dir if server.app else None
        assert data_dir is not None and data_dir.is_dir()
        response = httpx.get(
            f"{server.base_url}/credits", headers={"Authorization": "Bearer ast_test_inproc"}
        )
        assert response.status_code == 200
    assert not data_dir.exists()
    # Stopped means stopped: nothing listens any more.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{root}/healthz", timeout=1)
