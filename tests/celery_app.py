"""The Celery app of the test suite (and of the worker subprocess: ``-A tests.celery_app``).

Configured from Django settings (``CELERY_*``), like a project's own app, so the
package's ``shared_task``s bind to it in both processes.

Redelivery after a crash: every task is ``acks_late``, so a message whose worker
died stays in Redis' "unacked" set. Kombu's Redis transport hands it out again
only once it has been unacked for ``visibility_timeout`` (1 hour by default), and
a worker sweeps for such messages every ``unacked_restore_interval`` x
``unacked_restore_throttle`` seconds (10 x 10 by default). A worker started with
``AISTEMSPLITTER_TEST_VISIBILITY_TIMEOUT`` uses that timeout and sweeps every
second, so the crash tests (tests/django/test_worker_crash.py) see a killed
worker's task come back within the test. Only those workers set it: a short
timeout also re-delivers any task that simply runs (or waits for its countdown)
longer than the timeout, so it is not a default for every test.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

VISIBILITY_TIMEOUT_ENV = "AISTEMSPLITTER_TEST_VISIBILITY_TIMEOUT"


def broker_transport_options() -> dict[str, Any]:
    """Kombu's defaults, or a short visibility timeout swept every second."""
    timeout = os.environ.get(VISIBILITY_TIMEOUT_ENV)
    if not timeout:
        return {}
    return {
        "visibility_timeout": float(timeout),
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }


app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.broker_transport_options = broker_transport_options()
app.autodiscover_tasks(["django_aistemsplitter"])
