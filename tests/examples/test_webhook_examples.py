"""The FastAPI and Flask webhook receivers of ``examples/``, fed real sandbox deliveries.

Each sandbox below sends its genuine signed webhook to a local receiver; the
test replays those bytes and headers into the example app through the
framework's own test client, so the example verifies a real signature, reads
the event as the service's documentation writes it, and downloads real stems
from the sandbox. Skipped when FastAPI/Flask are missing, except in CI, where
the ``test`` extra installs them and a skip would hide a broken example.
"""

from __future__ import annotations

import importlib.util
import secrets
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import make_wav
from tests.sandbox.helpers import api, split_from_upload, webhook_receiver
from tests.sandbox_process import SandboxProcess, free_port
from tests.services import in_ci
from tests.waiting import wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PATH = "/webhooks/aistemsplitter"
STEM_NAMES = ["bass", "drums", "other", "vocals"]


def require_package(name: str) -> None:
    if importlib.util.find_spec(name) is not None:
        return
    if in_ci():
        pytest.fail(f"{name} is not installed; the test extra must provide it", pytrace=False)
    pytest.skip(f"{name} is not installed (pip install -e '.[test]')")


@dataclass(frozen=True)
class Delivery:
    """One webhook as a sandbox sent it, and the sandbox that sent it."""

    body: bytes
    signature: str
    sandbox: SandboxProcess

    @property
    def split_id(self) -> str:
        import json

        return str(json.loads(self.body)["data"]["id"])


API_KEY = "ast_test_" + secrets.token_hex(12)
SECRET = "whsec_" + secrets.token_hex(16)


def deliver(tmp: Path, **options: Any) -> Iterator[Delivery]:
    """Start a sandbox with ``options``, split a short song, capture its webhook."""
    sandbox = SandboxProcess(
        port=free_port(),
        api_key=API_KEY,
        webhook_secret=SECRET,
        data_dir=tmp,
        options={"engine": "passthrough", **options},
    ).start()
    try:
        wav = make_wav(tmp / "song.wav", seconds=1.0)
        with webhook_receiver() as receiver:
            split_from_upload(api(sandbox), wav, webhookUrl=receiver.url)
            event = wait_for(receiver.events, what="the sandbox's webhook")[0]
        yield Delivery(event.body, event.headers["aistemsplitter-signature"], sandbox)
    finally:
        sandbox.stop()


@pytest.fixture(scope="module")
def succeeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Delivery]:
    yield from deliver(tmp_path_factory.mktemp("ok"))


@pytest.fixture(scope="module")
def failed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Delivery]:
    yield from deliver(tmp_path_factory.mktemp("failing"), engine="no_such_engine")


@pytest.fixture(scope="module")
def thin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Delivery]:
    yield from deliver(tmp_path_factory.mktemp("thin"), webhook_format="thin")


def load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` afresh, as ``uvicorn``/``flask --app`` would."""
    module_name = f"example_{name}_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


Send = Callable[[bytes, dict[str, str]], tuple[int, dict[str, Any]]]
Example = Callable[[Delivery], AbstractContextManager[Send]]


@pytest.fixture(params=["fastapi", "flask"])
def example(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Example:
    """``with example(delivery) as send:`` runs the example app set up for that sandbox.

    ``send(body, headers)`` POSTs to its webhook route and returns (status, JSON).
    Leaving the block waits for the app's background downloads.
    """
    framework = str(request.param)
    require_package(framework)

    @contextmanager
    def running(delivery: Delivery) -> Iterator[Send]:
        monkeypatch.setenv("AISTEMSPLITTER_WEBHOOK_SECRET", SECRET)
        monkeypatch.setenv("AISTEMSPLITTER_API_KEY", API_KEY)
        monkeypatch.setenv("AISTEMSPLITTER_BASE_URL", delivery.sandbox.base_url)
        monkeypatch.setenv("STEMS_DIR", str(tmp_path / "stems"))
        module = load(f"{framework}_webhook")
        if framework == "fastapi":
            from fastapi.testclient import TestClient

            with TestClient(module.app) as client:  # runs the lifespan: the API client

                def send(body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
                    response = client.post(PATH, content=body, headers=headers)
                    return response.status_code, response.json()

                yield send
        else:
            flask_client = module.app.test_client()

            def send(body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
                response = flask_client.post(PATH, data=body, headers=headers)
                return response.status_code, response.get_json()

            yield send
            module.downloads.shutdown(wait=True)

    return running


def signed(delivery: Delivery) -> dict[str, str]:
    return {"AIStemSplitter-Signature": delivery.signature, "Content-Type": "application/json"}


def saved_stems(tmp_path: Path, split_id: str) -> list[str]:
    folder = tmp_path / "stems" / split_id
    return sorted(p.stem for p in folder.glob("*.wav")) if folder.is_dir() else []


def test_a_succeeded_event_lists_and_saves_the_stems(
    example: Example, succeeded: Delivery, tmp_path: Path
) -> None:
    with example(succeeded) as send:
        status, body = send(succeeded.body, signed(succeeded))
        assert status == 200, body
        assert body["stems"] == STEM_NAMES
        assert body["received"].startswith("evt_")
    saved = wait_for(lambda: saved_stems(tmp_path, succeeded.split_id), what="stems on disk")
    assert saved == STEM_NAMES
    assert all(p.stat().st_size > 1000 for p in (tmp_path / "stems").rglob("*.wav"))


def test_a_failed_event_reads_the_error_code(
    example: Example, failed: Delivery, tmp_path: Path
) -> None:
    with example(failed) as send:
        status, body = send(failed.body, signed(failed))
        assert (status, body.get("error")) == (200, "SEPARATION_FAILED")
    assert not (tmp_path / "stems").exists()


def test_a_thin_event_fetches_the_split(example: Example, thin: Delivery, tmp_path: Path) -> None:
    with example(thin) as send:
        status, body = send(thin.body, signed(thin))
        assert status == 200, body
        assert body["stems"] == STEM_NAMES
    assert wait_for(lambda: saved_stems(tmp_path, thin.split_id)) == STEM_NAMES


@pytest.mark.parametrize("forgery", ["tampered-body", "no-signature", "other-secret"])
def test_a_bad_signature_is_a_400_and_nothing_else(
    example: Example, succeeded: Delivery, tmp_path: Path, forgery: str
) -> None:
    from django_aistemsplitter.client import sign_payload

    body, headers = succeeded.body, signed(succeeded)
    if forgery == "tampered-body":
        body = body.replace(b'"succeeded"', b'"succeeded" ', 1)
    elif forgery == "no-signature":
        del headers["AIStemSplitter-Signature"]
    else:
        headers["AIStemSplitter-Signature"] = sign_payload(body, "whsec_" + "0" * 32)
    with example(succeeded) as send:
        status, _ = send(body, headers)
        assert status == 400
    assert not (tmp_path / "stems").exists()
