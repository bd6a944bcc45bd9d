"""Shared helpers of the admin, API, command and browser tests: jobs without a backend."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from django.core.files.base import ContentFile

from django_aistemsplitter.engines.audio import write_audio
from django_aistemsplitter.models import SplitJob, Stem, WebhookEvent

#: Values that must never appear in any page or response.
SECRET_API_KEY = "sk_live_NEVER-SHOW-ME-7d1f0c"
SECRET_WEBHOOK = "whsec_NEVER-SHOW-ME-b42e99"


def wav_bytes(
    seconds: float = 0.5, rate: int = 8000, channels: int = 2, freq: float = 220.0
) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.4 * np.sin(2 * np.pi * freq * t)
    audio = np.stack([mono] * channels).astype(np.float32)
    buffer = io.BytesIO()
    write_audio(buffer, audio, rate, "wav")
    return buffer.getvalue()


def make_job(
    owner: Any = None,
    *,
    status: str = SplitJob.Status.SUCCEEDED,
    stems: Iterable[str] = ("vocals", "drums", "bass", "other"),
    filename: str = "song.wav",
    stem_model: str = "htdemucs",
    backend: str = "local",
    with_audio: bool = True,
    **fields: Any,
) -> SplitJob:
    """A job row (and its files) as a finished split leaves it, without running one."""
    job = SplitJob.objects.create(
        owner=owner,
        stem_model=stem_model,
        backend=backend,
        status=status,
        original_filename=filename,
        duration_seconds=fields.pop("duration_seconds", 0.5),
        progress=fields.pop("progress", 1.0 if status == SplitJob.Status.SUCCEEDED else 0.3),
        **fields,
    )
    if with_audio:
        job.audio.save(filename, ContentFile(wav_bytes()), save=True)
    for index, name in enumerate(stems):
        data = wav_bytes(freq=110.0 * (index + 1))
        stem = Stem(
            job=job,
            name=name,
            format="wav",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            duration_seconds=0.5,
            sample_rate=8000,
            channels=2,
        )
        stem.file.save(f"{name}.wav", ContentFile(data), save=True)
    return job


def make_event(job: SplitJob, event_id: str = "evt_1", **fields: Any) -> WebhookEvent:
    return WebhookEvent.objects.create(
        event_id=event_id,
        type=fields.pop("type", "split.succeeded"),
        remote_id=job.remote_id or "spl_remote",
        remote_status=fields.pop("remote_status", "succeeded"),
        job=job,
        payload=fields.pop("payload", {"id": event_id, "data": {"status": "succeeded"}}),
        **fields,
    )


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]
