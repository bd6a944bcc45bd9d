"""The API client imports and works where ``import django`` fails.

A subprocess installs an import blocker for ``django`` and ``django.*`` before
anything else, imports the client and its errors, uploads, splits, waits for and
downloads stems from the sandbox over HTTP (blocking and asyncio), and checks a
webhook signature. The sandbox runs as its own process (with Django available),
as the hosted API would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.sandbox_process import SandboxProcess

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import asyncio, importlib.abc, json, os, sys
    from pathlib import Path

    class BlockDjango(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "django" or name.startswith("django."):
                raise ImportError(f"blocked for this test: {name}")
            return None

    sys.meta_path.insert(0, BlockDjango())
    try:
        import django  # noqa: F401
    except ImportError as exc:
        django_error = str(exc)
    else:
        raise SystemExit("django imported despite the blocker")

    from django_aistemsplitter.client import (
        AiStemSplitter, AsyncStemSplitter, StemSplitter, verify_signature, sign_payload,
        parse_event, AiStemSplitterError, APIError, NetworkError, APITimeoutError,
        RateLimitError, SignatureVerificationError, MalformedWebhookError,
        SplitFailedError, ConfigurationError, DownloadError, NotFoundError,
    )
    from django_aistemsplitter.client import exceptions as errors

    base_url, api_key, secret = (os.environ[k] for k in ("AST_URL", "AST_KEY", "AST_SECRET"))
    audio, out = Path(sys.argv[1]), Path(sys.argv[2])
    result = {"django_error": django_error}

    with StemSplitter(api_key, base_url=base_url, webhook_secret=secret) as client:
        split = client.create_split(input=client.upload_file(audio))
        done = client.wait_for_split(split.id, timeout=120)
        result["status"] = done["status"]
        result["stems"] = sorted(done["stems"])
        paths = client.download_stems(done, out / "sync")
        result["sync_files"] = sorted(p.name for p in paths.values() if p.stat().st_size > 0)
        try:
            client.get_split("split_does_not_exist")
        except NotFoundError as exc:
            result["not_found"] = isinstance(exc, (APIError, AiStemSplitterError))

        body = json.dumps(
            {"id": "evt_1", "type": "split.succeeded", "created": 1700000000,
             "data": {"id": done.id, "status": "succeeded", "stems": dict(done.stems)}}
        ).encode()
        header = sign_payload(body, secret)
        result["signed_at"] = verify_signature(body, header, secret) > 0
        event = client.verify_webhook({"AIStemSplitter-Signature": header}, body)
        result["event"] = [event.id, event.data["status"], sorted(event.data["stems"])]
        try:
            verify_signature(body, header, "whsec_wrong")
        except SignatureVerificationError:
            result["forged_refused"] = True
        try:
            parse_event(b'{"not": "an event"}')
        except MalformedWebhookError as exc:
            result["malformed_refused"] = isinstance(exc, SignatureVerificationError)

    async def run_async():
        async with AsyncStemSplitter(api_key, base_url=base_url) as aclient:
            split = await aclient.create_split(input=await aclient.upload_file(audio))
            done = await aclient.wait_for_split(split.id, timeout=120)
            paths = await aclient.download_stems(done, out / "async")
            return sorted(p.name for p in paths.values())

    result["async_files"] = asyncio.run(run_async())
    result["error_bases"] = sorted(
        {base.__module__ for cls in vars(errors).values()
         if isinstance(cls, type) and issubclass(cls, BaseException) for base in cls.__mro__}
    )
    result["django_modules"] = sorted(
        name for name in sys.modules if name == "django" or name.startswith("django.")
    )
    print(json.dumps(result))
    """
)


def test_client_works_with_django_blocked(
    sandbox: SandboxProcess, wav_file: Path, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "AST_URL": sandbox.base_url,
        "AST_KEY": sandbox.api_key,
        "AST_SECRET": sandbox.webhook_secret,
        "PYTHONPATH": str(REPO),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(wav_file), str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])

    assert "blocked for this test: django" in result["django_error"]
    assert result["django_modules"] == []
    assert result["error_bases"] == ["builtins", "django_aistemsplitter.client.exceptions"]
    assert result["status"] == "succeeded"
    stems = ["bass", "drums", "other", "vocals"]
    assert result["stems"] == stems
    assert result["sync_files"] == [f"{s}.wav" for s in stems]
    assert result["async_files"] == [f"{s}.wav" for s in stems]
    assert result["not_found"] is True
    assert result["signed_at"] is True
    assert result["event"][1:] == ["succeeded", stems]
    assert result["forged_refused"] is True
    assert result["malformed_refused"] is True
