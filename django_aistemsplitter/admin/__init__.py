"""The app's admin, registered when Django's autodiscovery imports this package.

* :mod:`.splitjob` -- the split job admin (add form, read-only change view, columns);
* :mod:`.views` -- its status JSON, source/stem audio and waveform URLs;
* :mod:`.actions` -- its bulk actions, all run by one helper;
* :mod:`.inlines`, :mod:`.filters`, :mod:`.display` -- stems and events inlines,
  change list filters, shared HTML fragments;
* :mod:`.webhookevent` -- the audit list of verified webhook deliveries.

Stems have no admin of their own: they are shown (read-only) with their job.
"""

from __future__ import annotations

from django.contrib import admin

from django_aistemsplitter.admin.splitjob import SplitJobAdmin
from django_aistemsplitter.admin.webhookevent import WebhookEventAdmin
from django_aistemsplitter.models import SplitJob, WebhookEvent

__all__ = ["SplitJobAdmin", "WebhookEventAdmin"]

admin.site.register(SplitJob, SplitJobAdmin)
admin.site.register(WebhookEvent, WebhookEventAdmin)
