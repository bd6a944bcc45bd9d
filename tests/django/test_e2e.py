"""End to end with a real Celery worker subprocess, Redis, PostgreSQL and the sandbox.

Each test starts its own worker on a private queue; the job is created in the
test process (committed, so the worker sees it) and the test waits on the
database with a generous deadline.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from django_aistemsplitter import services
from django_aistemsplitter.client import AiStemSplitter
from django_aistemsplitter.models import SplitJob
from tests.django.conftest import hosted_settings, sandbox_stats, sha256_of_url
from tests.sandbox_process import SandboxProcess
from tests.services import POSTGRES, require
from tests.waiting import wait_for
from tests.worker import WorkerProcess

pytestmark = [pytest.mark.worker, pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

TIMINGS: dict[str, float] = {}


@pytest.fixture(autouse=True)
def _postgres() -> None:
    require(POSTGRES)


def finished(job: SplitJob) -> Callable[[], bool]:
    def check() -> bool:
        job.refresh_from_db()
        return job.is_terminal

    return check


def assert_stems_match_sandbox(job: SplitJob, sandbox: SandboxProcess, media: Path | None) -> None:
    """Exactly the model's stems, stored once, with the bytes the sandbox serves."""
    assert job.status == SplitJob.Status.SUCCEEDED, (job.error_code, job.error_message)
    stems = list(job.stems.all())
    assert sorted(s.name for s in stems) == ["bass", "drums", "other", "vocals"]
    with AiStemSplitter(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        remote = client.get_split(job.remote_id)
    for stem in stems:
        expected = sha256_of_url(remote.stems[stem.name])
        assert stem.sha256 == expected
        with stem.file.open("rb") as fh:
            import hashlib

            assert hashlib.sha256(fh.read()).hexdigest() == expected
    if media is not None:
        stem_dir = media / "aistemsplitter" / "stems" / str(job.pk)
        assert sorted(p.name for p in stem_dir.iterdir()) == sorted(f"{s.name}.wav" for s in stems)


def run_jobs(count: int, wav_file: Path, **kwargs: Any) -> list[SplitJob]:
    return [services.split(wav_file, **kwargs) for _ in range(count)]


def test_local_backend_with_worker(
    worker_factory: Callable[..., WorkerProcess], wav_file: Path, media_root: Path
) -> None:
    worker_factory({"BACKEND": "local", "ENGINE": "passthrough"})
    started = time.monotonic()
    job = services.split(wav_file)
    wait_for(finished(job), what="the local job to finish")
    TIMINGS["local"] = time.monotonic() - started
    assert job.status == SplitJob.Status.SUCCEEDED, job.error_message
    assert job.stems.count() == 4
    assert job.progress == 1.0 and job.remote_id == ""
    stem_dir = media_root / "aistemsplitter" / "stems" / str(job.pk)
    assert sorted(p.name for p in stem_dir.iterdir()) == [
        "bass.wav",
        "drums.wav",
        "other.wav",
        "vocals.wav",
    ]


def test_hosted_polling(
    worker_factory: Callable[..., WorkerProcess],
    sandbox: SandboxProcess,
    wav_file: Path,
    media_root: Path,
) -> None:
    worker_factory(hosted_settings(sandbox))
    started = time.monotonic()
    job = services.split(wav_file)
    wait_for(finished(job), what="the polled job to finish")
    TIMINGS["polling"] = time.monotonic() - started
    assert job.remote_id.startswith("split_")
    assert job.credits_used is not None and job.estimated_cost is not None
    assert_stems_match_sandbox(job, sandbox, media_root)


def test_hosted_webhook(
    worker_factory: Callable[..., WorkerProcess],
    sandbox_factory: Callable[..., SandboxProcess],
    live_server: Any,
    wav_file: Path,
    media_root: Path,
) -> None:
    sandbox = sandbox_factory()
    worker_factory(hosted_settings(sandbox, WEBHOOK_BASE_URL=live_server.url))
    started = time.monotonic()
    job = services.split(wav_file)
    wait_for(finished(job), what="the webhook job to finish")
    TIMINGS["webhook"] = time.monotonic() - started
    assert_stems_match_sandbox(job, sandbox, media_root)
    assert job.webhook_events.exists()
    stats = sandbox_stats(sandbox)
    assert stats["webhooks"]["delivered"] >= 1
    # No polling happened: the only GETs are the ingest's fresh fetch(es).
    gets = sum(
        n for route, n in stats["requests"].items() if route.startswith("GET /v1/audio/splits/")
    )
    assert gets <= 2, stats


FAULTS = {
    "fail_rate": ({"fail_rate": 0.3, "retry_after_seconds": 0}, False),
    "truncate_rate": ({"truncate_rate": 0.5}, False),
    "duplicate_webhooks": ({"duplicate_webhooks": 3}, True),
    "drop_webhooks": ({"drop_webhooks": True}, True),
    "reorder_webhooks": ({"reorder_webhooks": True, "reorder_window": 0.5}, True),
    # Not a fault, the API page's event shape: id and status only, so we GET.
    "thin_webhooks": ({"webhook_format": "thin", "duplicate_webhooks": 1}, True),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_faults_still_end_with_every_stem_once(
    fault: str,
    worker_factory: Callable[..., WorkerProcess],
    sandbox_factory: Callable[..., SandboxProcess],
    live_server: Any,
    wav_file: Path,
    media_root: Path,
) -> None:
    from django.core.management import call_command

    switches, webhooks = FAULTS[fault]
    sandbox = sandbox_factory(webhook_retry_base=0.2, seed=7, **switches)
    extra: dict[str, Any] = {"RECONCILE_AFTER": 1.0}
    if webhooks:
        extra["WEBHOOK_BASE_URL"] = live_server.url
    worker_factory(hosted_settings(sandbox, **extra))
    started = time.monotonic()
    jobs = run_jobs(3, wav_file)

    def all_done() -> bool:
        if fault == "drop_webhooks":
            # Nothing is pushed: the periodic reconcile is what recovers.
            call_command("reconcile_splits", older_than=1.0, stdout=io.StringIO())
        return all(finished(job)() for job in jobs)

    wait_for(all_done, timeout=150, interval=1.0, what=f"3 jobs under {fault}")
    TIMINGS[f"fault:{fault}"] = time.monotonic() - started
    for job in jobs:
        assert_stems_match_sandbox(job, sandbox, media_root)
    stems_root = media_root / "aistemsplitter" / "stems"
    assert len([p for p in stems_root.rglob("*") if p.is_file()]) == 12
    stats = sandbox_stats(sandbox)
    assert stats["splits"] == 3, stats
    if fault == "duplicate_webhooks":
        assert stats["webhooks"]["delivered"] >= 6, stats
    if fault == "drop_webhooks":
        assert stats["webhooks"]["dropped"] >= 3, stats


@pytest.mark.parametrize("direct_url", [False, True], ids=["upload", "direct_url"])
def test_hosted_with_s3_storage(
    direct_url: bool,
    worker_factory: Callable[..., WorkerProcess],
    sandbox: SandboxProcess,
    s3_server: Any,
    wav_file: Path,
    media_root: Path,
) -> None:
    import hashlib

    storages = s3_server.storages(location=f"run-{time.monotonic_ns()}")
    worker_factory(hosted_settings(sandbox, DIRECT_URL_INPUT=direct_url), storages=storages)
    started = time.monotonic()
    job = services.split(wav_file)
    wait_for(finished(job), what="the S3 job to finish")
    TIMINGS[f"s3:{'direct_url' if direct_url else 'upload'}"] = time.monotonic() - started
    assert_stems_match_sandbox(job, sandbox, None)
    assert job.remote_input["type"] == ("direct_url" if direct_url else "uploaded_file")
    location = storages["default"]["OPTIONS"]["location"]
    keys = s3_server.keys(f"{location}/aistemsplitter/stems/{job.pk}/")
    assert [k.rsplit("/", 1)[1] for k in keys] == [
        "bass.wav",
        "drums.wav",
        "other.wav",
        "vocals.wav",
    ]
    s3 = s3_server.client()
    for stem in job.stems.all():
        body = s3.get_object(Bucket="aistemsplitter-test", Key=f"{location}/{stem.file.name}")[
            "Body"
        ]
        assert hashlib.sha256(body.read()).hexdigest() == stem.sha256
    assert not list(media_root.rglob("*.wav"))  # nothing went to the file system


def test_timings_report() -> None:
    print("\nend-to-end timings (s):", {k: round(v, 2) for k, v in TIMINGS.items()})
