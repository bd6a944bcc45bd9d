"""Fixtures of the Django-side tests: eager Celery, media roots, a real worker."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import django
import httpx
import pytest
from django.core.files.storage import storages as file_storages
from django.db import connection

from tests.sandbox_process import SandboxProcess
from tests.services import REDIS, require
from tests.worker import WorkerProcess, start_worker


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def hosted_settings(sandbox: SandboxProcess, **extra: Any) -> dict[str, Any]:
    """AISTEMSPLITTER values pointing at a sandbox, polling fast."""
    return {
        "BACKEND": "hosted",
        "API_KEY": sandbox.api_key,
        "BASE_URL": sandbox.base_url,
        "WEBHOOK_SECRET": sandbox.webhook_secret,
        "ALLOW_HTTP_DOWNLOADS": True,
        "POLL_INTERVAL": 0.2,
        "POLL_MAX_INTERVAL": 1.0,
        "HTTP_TIMEOUT": 10.0,
        "HTTP_MAX_RETRIES": 4,
        "TASK_MAX_RETRIES": 8,
        "RETRY_BACKOFF": 0.2,
        "RETRY_BACKOFF_MAX": 2.0,
        **extra,
    }


@pytest.fixture
def worker_factory(
    request: pytest.FixtureRequest,
    transactional_db: None,
    settings: Any,
    media_root: Path,
    tmp_path: Path,
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start a real ``celery worker`` sharing this test's DB, media and settings.

    The test process's own ``AISTEMSPLITTER`` is set to the same values (plus
    the worker's private queue) so what it enqueues reaches that worker and its
    webhook view verifies with the same secret.
    """
    require(REDIS)
    started: list[WorkerProcess] = []

    def make(
        aistemsplitter: dict[str, Any],
        storages: dict[str, Any] | None = None,
        extra_env: dict[str, str] | None = None,
        concurrency: int = 2,
    ) -> WorkerProcess:
        worker = start_worker(
            db_name=connection.settings_dict["NAME"],
            media_root=str(media_root),
            log_dir=tmp_path,
            aistemsplitter=aistemsplitter,
            storages=storages,
            extra_env=extra_env,
            concurrency=concurrency,
        )
        started.append(worker)
        settings.AISTEMSPLITTER = {**aistemsplitter, "TASK_QUEUE": worker.queue}
        if storages is not None:
            settings.STORAGES = storages
            if django.VERSION < (5, 1):
                # Django 4.2/5.0: override_settings(STORAGES=...) also marks the deprecated
                # DEFAULT_FILE_STORAGE as overridden, and the storage handler then rebuilds
                # "default" from that backend path alone, dropping its OPTIONS (bucket,
                # endpoint...). Give the handler the intended config; the settings
                # fixture's teardown resets it (Django deletes ``storages.backends``).
                file_storages.backends = dict(storages)
        return worker

    yield make
    failed = getattr(request.node, "rep_call", None)
    for worker in started:
        worker.stop()
        if failed is not None and failed.failed:
            print(f"\n----- celery worker log ({worker.queue}) -----\n{worker.log()}")


def sha256_of_url(url: str, attempts: int = 20) -> str:
    """SHA-256 of what ``url`` serves; retried, since fault tests cut downloads short."""
    for attempt in range(attempts):
        digest = hashlib.sha256()
        try:
            with httpx.stream("GET", url, timeout=10) as response:
                response.raise_for_status()
                for chunk in response.iter_bytes():
                    digest.update(chunk)
            return digest.hexdigest()
        except httpx.HTTPError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1)
    raise AssertionError("unreachable")


def sandbox_stats(sandbox: SandboxProcess) -> dict[str, Any]:
    response = httpx.get(
        f"{sandbox.root_url}/_sandbox/stats",
        headers={"Authorization": f"Bearer {sandbox.api_key}"},
        timeout=5,
    )
    response.raise_for_status()
    return dict(response.json()["data"])


from tests.django.s3 import s3_server  # noqa: E402,F401 - fixture
