from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AiStemSplitterConfig(AppConfig):
    name = "django_aistemsplitter"
    label = "aistemsplitter"
    verbose_name = _("AI stem splitter")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Wire the app once the registry is ready, never at import time.

        * system checks register themselves on import;
        * the Celery tasks become the sender of job steps (the layers below them
          name a step and never import the tasks);
        * auto-split: one receiver pair for every model, and the registrations
          from ``AUTO_SPLIT``;
        * each stem's waveform is drawn by a task of its own once the stem is
          stored (the ``draw_waveform`` task, queued on commit);
        * the hosted backend's shared HTTP clients are closed when a Celery
          worker (process) shuts down.
        """
        from celery import signals as celery_signals

        from django_aistemsplitter import autosplit, checks, dispatch, tasks, waveform  # noqa: F401
        from django_aistemsplitter.backends.hosted.backend import close_clients
        from django_aistemsplitter.registry import register_from_settings

        dispatch.connect(tasks.send_step)
        autosplit.connect()
        waveform.connect(tasks.send_draw_waveform)
        register_from_settings()
        celery_signals.worker_process_shutdown.connect(close_clients, weak=False)
        celery_signals.worker_shutdown.connect(close_clients, weak=False)
