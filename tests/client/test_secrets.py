"""The API key and webhook secret never show up in reprs, errors or log records."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from django_aistemsplitter.client import (
    AiStemSplitter,
    APIError,
    AsyncAiStemSplitter,
    AuthenticationError,
    NotFoundError,
)
from tests.client.conftest import Api
from tests.sandbox_process import SandboxProcess

KEY = "ast_test_SUPERSECRETKEY123"
SECRET = "whsec_SUPERSECRETSIGNING456"


@pytest.mark.parametrize("cls", [AiStemSplitter, AsyncAiStemSplitter])
def test_repr_hides_secrets(cls: type) -> None:
    client = cls(KEY, webhook_secret=SECRET, base_url="http://127.0.0.1:9/v1")
    text = repr(client) + str(client) + repr(client._core) + repr(client._core.config)
    assert KEY not in text and SECRET not in text
    assert "api_key=set" in repr(client) and "127.0.0.1:9" in repr(client)


async def test_errors_and_logs_never_carry_secrets(
    make_api: Callable[..., Api],
    sandbox: SandboxProcess,
    wav_file: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = make_api(sandbox, api_key=KEY, webhook_secret=SECRET, max_retries=0)
    with pytest.raises(AuthenticationError) as caught:
        await wrong.get_credits()
    good = make_api(sandbox)
    with pytest.raises(NotFoundError) as missing:
        await good.get_split("split_nope")
    done = await good.wait(await good.create_split(await good.upload_file(wav_file)), timeout=120)
    await good.download(done, tmp_path / "stems")

    errors: list[APIError] = [caught.value, missing.value]
    texts = [str(e) + repr(e) + repr(e.details) for e in errors]
    ours = [r for r in caplog.records if r.name.startswith("django_aistemsplitter.client")]
    assert ours, "the client logged nothing at DEBUG"
    assert any("/audio/splits" in r.getMessage() for r in ours)
    texts += [r.getMessage() for r in caplog.records]
    for secret in (KEY, SECRET, sandbox.api_key, sandbox.webhook_secret):
        assert not any(secret in t for t in texts), secret
    assert not any("Bearer" in r.getMessage() or "Authorization" in r.getMessage() for r in ours)
    assert not any("signature=" in r.getMessage() for r in ours)  # presigned URLs trimmed
