"""The SDK documentation's recipe for files over 50 MB, run as written against the sandbox.

The docs say: call ``presign_upload()``, upload the file "via httpx multipart"
to the returned URL, then submit "with the returned audio_url" instead of
streaming it through the gateway (limited to 50 MB). The block between the
markers is that recipe verbatim but for the import line (the docs import
``aistemsplitter``); the default base URL and the key's environment variable
point at the sandbox. It runs on a generated WAV over the gateway limit, once per
way of sending the bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import numpy as np
import pytest

from django_aistemsplitter import contract
from django_aistemsplitter.engines.audio import AudioWriter
from tests.sandbox_process import SandboxProcess

pytestmark = pytest.mark.slow

RATE = 44_100
#: 32-bit float stereo: 352.8 kB per second, so 160 s is ~56 MB.
SECONDS = 160


@pytest.fixture(scope="module")
def big_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A WAV over the gateway's 50 MB limit, written block by block (no 56 MB array)."""
    path = tmp_path_factory.mktemp("big") / "song.wav"
    t = np.arange(RATE) / RATE
    with AudioWriter(path, RATE, 2, "wav", subtype="float") as out:
        for second in range(SECONDS):
            tone = 0.2 * np.sin(2 * np.pi * (110 + second) * t)
            out.write(np.stack([tone, 0.5 * tone]).astype(np.float32))
    assert path.stat().st_size > contract.MAX_DIRECT_BYTES
    return path


#: How the bytes reach ``upload.upload_url``: the docs' "httpx multipart" (as a POST
#: or a PUT, form field ``file``) and the raw PUT that ``uploadMethod`` names.
UPLOADS: dict[str, Callable[[Any, BinaryIO], httpx.Response]] = {
    "multipart-post": lambda upload, f: httpx.post(upload.upload_url, files={"file": f}),
    "multipart-put": lambda upload, f: httpx.put(upload.upload_url, files={"file": f}),
    "raw-put": lambda upload, f: httpx.put(
        upload.upload_url, content=f, headers=upload.upload_headers
    ),
}


@pytest.fixture
def hosted_is_the_sandbox(sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the docs' ``AiStemSplitter(api_key=...)`` reaches: the sandbox, with its key."""
    monkeypatch.setattr(contract, "DEFAULT_BASE_URL", sandbox.base_url)
    monkeypatch.setenv(contract.API_KEY_ENV, sandbox.api_key)


@pytest.mark.usefixtures("hosted_is_the_sandbox")
@pytest.mark.parametrize("variant", list(UPLOADS))
def test_big_file_recipe(big_wav: Path, variant: str) -> None:
    path, upload_to = str(big_wav), UPLOADS[variant]

    # --- the docs' recipe (import line adapted) ---
    from django_aistemsplitter.client import AiStemSplitter  # docs: from aistemsplitter import

    client = AiStemSplitter(api_key=os.environ["AISTEMSPLITTER_API_KEY"])
    upload = client.presign_upload(
        filename="song.wav", content_type="audio/wav", content_length=os.path.getsize(path)
    )
    with open(path, "rb") as f:
        upload_to(upload, f).raise_for_status()  # "upload via httpx multipart"
    job = client.create_split(input=upload.audio_url, stem_model="htdemucs_ft")
    result = client.wait_for_split(job.id)
    # --- end ---

    client.close()
    assert result.status == "succeeded", result.error
    assert result.duration_seconds == pytest.approx(SECONDS, abs=0.01)
    assert sorted(result.stems) == ["bass", "drums", "other", "vocals"]


@pytest.mark.usefixtures("hosted_is_the_sandbox")
def test_upload_file_still_does_it_in_one_call(big_wav: Path) -> None:
    from django_aistemsplitter.client import AiStemSplitter

    with AiStemSplitter() as client:
        uploaded = client.upload_file(big_wav)
        split = client.wait(client.submit(input=uploaded).id)
    assert split.status == "succeeded", split.error
    assert uploaded.content_length == big_wav.stat().st_size
