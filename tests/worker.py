"""A real ``celery worker`` subprocess for end-to-end tests.

The worker runs the package's tasks against the SAME test database (the test
process passes pytest-django's database name), the same media root and the
same ``AISTEMSPLITTER``/``STORAGES`` values, and consumes only its own queue, so
stray messages of other tests or sessions never reach it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class WorkerProcess:
    queue: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    started_in: float = 0.0
    env: dict[str, str] = field(default_factory=dict, repr=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def start_worker(
    *,
    db_name: str,
    media_root: str,
    log_dir: Path,
    aistemsplitter: dict[str, Any],
    storages: dict[str, Any] | None = None,
    queue: str | None = None,
    concurrency: int = 2,
    timeout: float = 60.0,
) -> WorkerProcess:
    """Start a worker and wait until it is consuming its queue."""
    queue = queue or f"aiss-test-{uuid.uuid4().hex[:12]}"
    overrides: dict[str, Any] = {"AISTEMSPLITTER": {**aistemsplitter, "TASK_QUEUE": queue}}
    if storages is not None:
        overrides["STORAGES"] = storages
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "AISTEMSPLITTER_WORKER_DB_NAME": db_name,
        "AISTEMSPLITTER_TEST_MEDIA_ROOT": media_root,
        "AISTEMSPLITTER_TEST_OVERRIDES": json.dumps(overrides),
        "PYTHONUNBUFFERED": "1",
    }
    log_path = log_dir / f"worker-{queue}.log"
    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tests.celery_app",
        "worker",
        "--pool=threads",
        "-c",
        str(concurrency),
        "-Q",
        queue,
        "-n",
        f"{queue}@%h",
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
        "-l",
        "INFO",
    ]
    worker = WorkerProcess(queue=queue, log_path=log_path, env=env)
    started = time.monotonic()
    log = open(log_path, "ab")  # noqa: SIM115 - lives as long as the process
    worker.process = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=Path(__file__).parent.parent
    )
    deadline = started + timeout
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            raise RuntimeError(f"celery worker exited early:\n{worker.log()}")
        if " ready." in worker.log():
            worker.started_in = time.monotonic() - started
            return worker
        time.sleep(0.1)
    worker.stop()
    raise RuntimeError(f"celery worker not ready within {timeout}s:\n{worker.log()}")
