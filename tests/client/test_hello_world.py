"""The README's hello world, verbatim apart from where the sandbox lives."""

from __future__ import annotations

from pathlib import Path

from tests.sandbox_process import SandboxProcess


def test_hello_world(sandbox: SandboxProcess, wav_file: Path, tmp_path: Path) -> None:
    base_url, api_key = sandbox.base_url, sandbox.api_key

    # --- README hello world (12 lines) ---
    from django_aistemsplitter.client import AiStemSplitter

    with AiStemSplitter(api_key, base_url=base_url) as client:
        upload = client.upload_file(wav_file)
        split = client.submit(input=upload, stem_model="htdemucs_ft")
        split = client.wait(split.id)
        if split.failed:
            raise SystemExit(f"split failed: {split.error}")
        paths = client.download(split, tmp_path / "stems")
        for name, path in paths.items():
            print(name, path)
    # --- end ---

    assert sorted(paths) == ["bass", "drums", "other", "vocals"]
    assert all(path.stat().st_size > 1000 for path in paths.values())
