"""The README's "Direct uploads" example runs as written: curl and jq, three commands.

The bash block is taken from README.md itself, pointed at a live server instead
of ``localhost:8000`` and run with ``bash -euo pipefail`` in a folder holding
``song.wav``; the split it creates must succeed with the uploaded file as its
audio. A README edit that breaks the recipe fails here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from django_aistemsplitter.models import SplitJob, UploadTicket
from tests.api.helpers import wav_bytes

README = Path(__file__).resolve().parents[2] / "README.md"

pytestmark = [pytest.mark.urls("tests.api.urls")]


def readme_recipe() -> str:
    """The bash block of the README's "Direct uploads" section."""
    section = README.read_text().split("## Direct uploads", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert found, "README.md's Direct uploads section has no bash block"
    return found.group(1)


def json_documents(text: str) -> list[dict[str, Any]]:
    """The JSON objects curl printed one after the other (without newlines between)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        value, end = decoder.raw_decode(text, at)
        found.append(value)
        at = end
        while at < len(text) and text[at].isspace():
            at += 1
    return found


def test_the_readme_recipe_uploads_and_splits(
    live_server: Any, settings: Any, media_root: Path, tmp_path: Path, celery_eager: None
) -> None:
    for tool in ("curl", "jq"):
        if shutil.which(tool) is None:  # `make test` installs both (system-deps)
            pytest.fail(f"{tool} is needed to run the README's recipe")
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "BACKEND": "local"}
    get_user_model().objects.create_user("alice", password="secret")
    (tmp_path / "song.wav").write_bytes(wav_bytes(seconds=2.0))
    script = readme_recipe().replace("http://localhost:8000", live_server.url)
    assert script.count(live_server.url) == 2, "the recipe talks to the server twice"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answers = json_documents(done.stdout)  # the upload view's answer, then the split's
    assert answers[0]["complete"] is True
    job = SplitJob.objects.get(pk=answers[-1]["id"])
    assert job.status == SplitJob.Status.SUCCEEDED, job.error_message
    ticket = UploadTicket.objects.get(job=job)
    assert (ticket.destination, job.audio.name) == ("app", ticket.storage_name)
    assert job.stems.count() == 4
