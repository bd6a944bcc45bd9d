"""The example project's Celery app: settings come from Django's ``CELERY_*`` settings.

Without ``CELERY_BROKER_URL`` in the environment, tasks run eagerly inside the web
or command process (no broker, no worker). With it, start a worker::

    CELERY_BROKER_URL=redis://127.0.0.1:6379/0 celery -A example_project worker -l info
"""

import os

from celery import Celery

from django_aistemsplitter.celery_schedule import beat_schedule

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

app = Celery("example_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# The safety net for lost webhooks and dead workers: `celery -A example_project beat`
# runs reconcile_splits every AISTEMSPLITTER["RECONCILE_INTERVAL"] seconds.
@app.on_after_configure.connect
def add_reconcile_schedule(sender: Celery, **kwargs: object) -> None:
    sender.conf.beat_schedule.update(beat_schedule())
