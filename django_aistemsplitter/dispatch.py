"""The steps that move a job along, and the one way to ask for them.

The services and the job-state code decide *what* should happen next to a job
(submit it, poll it, refresh it, ingest its stems) and name that :class:`Step`
here; they never import the Celery tasks that do the work. The task module, an
adapter at the edge, connects itself as the sender when the app is ready
(``AppConfig.ready``), so imports point one way: entry points -> services ->
job state -> dispatch, and tasks -> services/state.

Steps are sent only once the current transaction commits, so a worker never
looks for a row that is not there yet.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from django.db import transaction

from django_aistemsplitter.exceptions import ConfigurationError

__all__ = ["Sender", "Step", "connect", "send", "send_on_commit"]


class Step(str, enum.Enum):
    """A unit of work on one job; each is idempotent, so sending one twice is harmless."""

    SUBMIT = "submit"
    """Hand a pending job to its backend (remote: create the split; in-process: run it)."""
    POLL = "poll"
    """GET the remote split and apply it, then poll again later (no webhooks)."""
    REFRESH = "refresh"
    """GET the remote split once and apply it (after a thin webhook, or reconcile)."""
    INGEST = "ingest"
    """Download the stems of a succeeded remote split into storage."""


#: ``sender(step, job_id, kwargs, countdown)``: puts the step on the work queue.
Sender = Callable[[Step, str, dict[str, Any], "float | None"], None]

_sender: Sender | None = None


def connect(sender: Sender) -> None:
    """Install the function that sends steps to the workers (the Celery task module)."""
    global _sender
    _sender = sender


def send(step: Step, job_id: Any, *, countdown: float | None = None, **kwargs: Any) -> None:
    """Send ``step`` for ``job_id`` now (use :func:`send_on_commit` inside a transaction)."""
    if _sender is None:
        raise ConfigurationError(
            "No task sender is connected: add 'django_aistemsplitter' to INSTALLED_APPS "
            "so its AppConfig wires the Celery tasks."
        )
    _sender(step, str(job_id), kwargs, countdown)


def send_on_commit(
    step: Step, job_id: Any, *, countdown: float | None = None, **kwargs: Any
) -> None:
    """Send ``step`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: send(step, job_id, countdown=countdown, **kwargs))
