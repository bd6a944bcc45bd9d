"""``split_audio`` where a new project trips: no worker running, no broker answering.

Both end in one ``CommandError`` line that says what is wrong and what to do;
with the broker down no job (and no stored audio) is left behind. A worker that
is there but has not taken the job yet is waited for, not reported missing.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from django_aistemsplitter.management.commands.split_audio import consumers_of
from django_aistemsplitter.models import SplitJob
from tests.api.helpers import wav_bytes
from tests.sandbox_process import free_port
from tests.services import REDIS, require
from tests.worker import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture
def song(tmp_path: Path) -> Path:
    path = tmp_path / "take.wav"
    path.write_bytes(wav_bytes(seconds=0.5))
    return path


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_no_worker_is_one_line_with_the_command_that_starts_one(
    song: Path, media_root: Path, settings: Any
) -> None:
    require(REDIS)
    queue = f"aiss-nobody-{uuid.uuid4().hex[:8]}"  # a queue no worker consumes
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "TASK_QUEUE": queue}
    err = io.StringIO()
    try:
        with pytest.raises(CommandError) as raised:
            call_command("split_audio", str(song), "--worker-timeout", "1", stderr=err)
    finally:
        from tests.celery_app import app

        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)  # the message nobody took
    message = str(raised.value)
    assert "\n" not in message
    job = SplitJob.objects.get()
    assert f"No Celery worker picked up job {job.pk} within 1 s" in message
    assert f"`celery -A tests worker -l info -Q {queue}`" in message
    assert "CELERY_TASK_ALWAYS_EAGER" in message
    assert job.status == SplitJob.Status.PENDING  # still queued for a worker to come


@pytest.mark.django_db(transaction=True)
def test_a_broker_that_does_not_answer_is_one_line_and_leaves_no_job(
    song: Path, media_root: Path
) -> None:
    """Run as a user would: a separate ``manage.py`` process whose broker port is closed."""
    broker = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "AISTEMSPLITTER_WORKER_DB_NAME": connection.settings_dict["NAME"],
        "AISTEMSPLITTER_TEST_MEDIA_ROOT": str(media_root),
        "CELERY_BROKER_URL": broker,
    }
    code = (
        "import tests.celery_app, sys; from django.core.management import "
        "execute_from_command_line as run; run(['manage.py', 'split_audio', sys.argv[1]])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(song)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("CommandError: Cannot reach the Celery broker at redis://")
    assert "No job was kept" in last
    assert "Traceback" not in done.stderr and "kombu" not in done.stderr.lower()
    assert "hunter2" not in done.stderr
    assert SplitJob.objects.count() == 0
    assert [p for p in media_root.rglob("*") if p.is_file()] == []


@pytest.mark.redis
@pytest.mark.worker
def test_a_running_worker_is_not_reported_missing(
    worker_factory: Callable[..., WorkerProcess], song: Path, media_root: Path
) -> None:
    """Past the grace period a pending job is only reported when nobody consumes its queue."""
    worker = worker_factory({"BACKEND": "local", "ENGINE": "passthrough"})
    assert consumers_of(worker.queue) == [f"{worker.queue}@{socket.gethostname()}"]
    assert consumers_of(f"{worker.queue}-nobody") == []
    out = io.StringIO()
    call_command("split_audio", str(song), "--worker-timeout", "0.001", stdout=out)
    assert SplitJob.objects.get().status == SplitJob.Status.SUCCEEDED
    assert sorted(line.split()[0] for line in out.getvalue().splitlines()[1:]) == [
        "bass",
        "drums",
        "other",
        "vocals",
    ]
