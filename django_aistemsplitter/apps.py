from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AiStemSplitterConfig(AppConfig):
    name = "django_aistemsplitter"
    label = "aistemsplitter"
    verbose_name = _("AI stem splitter")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # System checks and auto-split registrations from settings are wired here,
        # once the app registry is ready, never at import time.
        from django_aistemsplitter import checks  # noqa: F401
        from django_aistemsplitter.registry import register_from_settings

        register_from_settings()
