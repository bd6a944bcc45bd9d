"""A real ``celery worker`` subprocess for end-to-end tests.

The worker runs the package's tasks against the SAME test database (the test
process passes pytest-django's database name), the same media root and the
same ``AISTEMSPLITTER``/``STORAGES`` values, and consumes only its own queue, so
stray messages of other tests or sessions never reach it.
"""

from __future__ import annotations

import json
import os
import signal
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

    def kill(self) -> None:
        """SIGKILL the whole worker at once (its process group), as an OOM kill or a
        power cut would: no warm shutdown, no ack, no cleanup."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            if os.getpgid(self.process.pid) == self.process.pid:
                os.killpg(self.process.pid, signal.SIGKILL)
            else:
                self.process.kill()
        except ProcessLookupError:
            pass
        self.process.wait(10)

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
    extra_env: dict[str, str] | None = None,
    own_process_group: bool = False,
    may_die: bool = False,
) -> WorkerProcess:
    """Start a worker and wait until it is consuming its queue.

    ``extra_env`` adds environment variables (``TMPDIR``, Celery knobs read by
    ``tests.celery_app``). With ``own_process_group`` the worker leads a new
    process group, so :meth:`WorkerProcess.kill` takes down everything it
    started (pool children included) with one signal. ``may_die``: a worker that
    is meant to be killed by the message waiting for it may die before it says
    it is ready; it is then returned as it is, for the caller to inspect.
    """
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
        **(extra_env or {}),
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
        args,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=Path(__file__).parent.parent,
        start_new_session=own_process_group,
    )
    deadline = started + timeout
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            if may_die:
                return worker
            raise RuntimeError(f"celery worker exited early:\n{worker.log()}")
        if " ready." in worker.log():
            worker.started_in = time.monotonic() - started
            return worker
        time.sleep(0.1)
    worker.stop()
    raise RuntimeError(f"celery worker not ready within {timeout}s:\n{worker.log()}")
