"""The Celery app of the test suite (and of the worker subprocess: ``-A tests.celery_app``).

Configured from Django settings (``CELERY_*``), like a project's own app, so the
package's ``shared_task``s bind to it in both processes.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["django_aistemsplitter"])
