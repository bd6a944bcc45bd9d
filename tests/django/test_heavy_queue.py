"""HEAVY_TASK_QUEUE: separations in the worker go to a queue of their own, on the real broker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings

from django_aistemsplitter.dispatch import Step
from django_aistemsplitter.models import SplitJob
from django_aistemsplitter.tasks import heavy_queue, send_step

pytestmark = pytest.mark.django_db


def job_on(backend: str) -> SplitJob:
    return SplitJob.objects.create(stem_model="htdemucs", backend=backend)


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:  # pragma: no cover - CI has Redis
        pytest.fail(f"Redis is needed for this test: {exc}")
    yield client


@pytest.fixture
def queues() -> tuple[str, str]:
    """A heavy and a light queue name of this test alone, so other runs' messages don't count."""
    tag = uuid.uuid4().hex[:8]
    return f"heavy-{tag}", f"light-{tag}"


def test_only_the_submit_of_an_in_process_job_is_heavy(settings: Any) -> None:
    settings.AISTEMSPLITTER = {"HEAVY_TASK_QUEUE": "heavy"}
    local, hosted = job_on("local"), job_on("hosted")
    assert heavy_queue(Step.SUBMIT, str(local.pk)) == "heavy"
    for step in (Step.POLL, Step.REFRESH, Step.INGEST):
        assert heavy_queue(step, str(local.pk)) is None
    assert heavy_queue(Step.SUBMIT, str(hosted.pk)) is None


def test_off_by_default_and_harmless_for_unknown_backends(settings: Any) -> None:
    settings.AISTEMSPLITTER = {}
    assert heavy_queue(Step.SUBMIT, str(job_on("local").pk)) is None
    settings.AISTEMSPLITTER = {"HEAVY_TASK_QUEUE": "heavy"}
    # The submit task fails such a job with the reason; which queue carries it does not matter.
    assert heavy_queue(Step.SUBMIT, str(job_on("no.such.Backend").pk)) is None
    # A job deleted before its step is sent falls back to the configured backend (local here).
    assert heavy_queue(Step.SUBMIT, str(uuid.uuid4())) == "heavy"


def _task_names(broker: redis.Redis, queue: str) -> list[str]:
    return [json.loads(raw)["headers"]["task"] for raw in broker.lrange(queue, 0, -1)]


def test_messages_land_on_the_heavy_and_the_light_queue(
    settings: Any, broker: redis.Redis, queues: tuple[str, str]
) -> None:
    heavy, light = queues
    settings.AISTEMSPLITTER = {"HEAVY_TASK_QUEUE": heavy, "TASK_QUEUE": light}
    local, hosted = job_on("local"), job_on("hosted")
    try:
        send_step(Step.SUBMIT, str(local.pk), {}, None)
        send_step(Step.SUBMIT, str(hosted.pk), {}, None)
        send_step(Step.INGEST, str(local.pk), {}, None)
        assert _task_names(broker, heavy) == ["django_aistemsplitter.tasks.submit_split"]
        assert sorted(_task_names(broker, light)) == [
            "django_aistemsplitter.tasks.ingest_split",
            "django_aistemsplitter.tasks.submit_split",
        ]
    finally:
        broker.delete(heavy, light)
