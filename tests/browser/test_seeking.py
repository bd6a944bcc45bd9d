"""A player in the admin seeks into a long stem and plays from there, from disk and from S3.

Seeking needs byte ranges: from the file system Django answers them (206); from
S3 Django redirects to a signed URL and the bucket answers them. Chromium is
told to jump to 80 % of a 10-minute stem and must play on from there, having
fetched a range rather than the whole file.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile

from django_aistemsplitter.models import SplitJob, Stem
from tests.api.helpers import make_job
from tests.browser.test_admin_browser import (  # noqa: F401 - fixtures
    AUDIO_READY,
    admin_user_row,
    browser,
    page,
)
from tests.django.s3 import S3Server, s3_server  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MINUTES = 10
RATE = 8000

SEEK_TO_80_PERCENT = """(selector) => {
  const audio = document.querySelector(selector);
  audio.muted = true;
  audio.currentTime = audio.duration * 0.8;
}"""
SEEKED = """(selector) => {
  const audio = document.querySelector(selector);
  return !audio.seeking && audio.currentTime >= audio.duration * 0.79;
}"""
PLAYING_ON = """(selector) => {
  const audio = document.querySelector(selector);
  return audio.currentTime >= audio.duration * 0.8 + 0.5;
}"""


def long_wav() -> bytes:
    """Ten minutes of a quiet tone, 16-bit mono at 8 kHz (about 9.6 MB)."""
    t = np.arange(MINUTES * 60 * RATE) / RATE
    buffer = io.BytesIO()
    sf.write(buffer, 0.2 * np.sin(2 * np.pi * 220 * t), RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def job_with_a_long_stem() -> SplitJob:
    user = get_user_model().objects.get(username="browser-admin")
    job = make_job(user, stems=(), filename="long.wav")
    data = long_wav()
    stem = Stem(job=job, name="vocals", format="wav", size=len(data), sha256="")
    stem.file.save("vocals.wav", ContentFile(data), save=True)
    return job


def seek_and_play(tab: Any, live_server: Any, job: SplitJob) -> tuple[float, list[Any]]:
    responses: list[Any] = []
    tab.on("response", lambda response: responses.append(response))
    tab.goto(f"{live_server.url}/admin/aistemsplitter/splitjob/{job.pk}/change/")
    selector = "audio[data-stem=vocals]"
    tab.wait_for_function(AUDIO_READY, arg=selector)
    duration = float(tab.evaluate(f"() => document.querySelector('{selector}').duration"))
    assert duration == pytest.approx(MINUTES * 60, abs=1)
    tab.evaluate(SEEK_TO_80_PERCENT, selector)
    tab.wait_for_function(SEEKED, arg=selector)
    tab.evaluate(f"() => document.querySelector('{selector}').play()")
    tab.wait_for_function(PLAYING_ON, arg=selector)
    position = float(tab.evaluate(f"() => document.querySelector('{selector}').currentTime"))
    assert position >= duration * 0.8
    return position, responses


def test_seek_to_80_percent_of_a_stem_on_disk(
    page: Any,  # noqa: F811 - the imported fixture
    live_server: Any,
    media_root: Path,
    admin_user_row: Any,  # noqa: F811
) -> None:
    job = job_with_a_long_stem()
    _position, responses = seek_and_play(page, live_server, job)
    stem_answers = [r for r in responses if "/stems/vocals/" in r.url and "waveform" not in r.url]
    assert any(r.status == 206 for r in stem_answers), [(r.url, r.status) for r in stem_answers]


def test_seek_to_80_percent_of_a_stem_on_s3(
    page: Any,  # noqa: F811 - the imported fixture
    live_server: Any,
    media_root: Path,
    s3_server: S3Server,  # noqa: F811
    settings: Any,
) -> None:
    settings.STORAGES = s3_server.storages(location=f"browser-{time.monotonic_ns()}")
    job = job_with_a_long_stem()
    _position, responses = seek_and_play(page, live_server, job)
    redirects = [r for r in responses if "/stems/vocals/" in r.url and r.status == 302]
    assert redirects, "Django redirects the player to the bucket"
    from_bucket = [r for r in responses if r.url.startswith(s3_server.endpoint_url)]
    assert any(r.status == 206 for r in from_bucket), [(r.url, r.status) for r in from_bucket]
