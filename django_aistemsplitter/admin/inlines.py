"""Read-only inlines of the split job page: its stems (play, waveform, download) and events.

Stems and webhook events are written by the ingest and the webhook view only;
the admin shows them and never offers to add, change or delete them.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from django_aistemsplitter.admin.display import cut_html, job_admin_url
from django_aistemsplitter.models import SplitJob, Stem, WebhookEvent


class ReadOnlyInline(admin.TabularInline):
    """Shown with the job, never added, changed or deleted by hand."""

    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Whoever may see the job may see its stems and events.
        opts = SplitJob._meta
        return request.user.has_perm(f"{opts.app_label}.view_{opts.model_name}") or (
            request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")
        )


class StemInline(ReadOnlyInline):
    model = Stem
    verbose_name_plural = _("stems")
    fields = (
        "name",
        "player",
        "download",
        "size_display",
        "duration_seconds",
        "audio_format",
        "sha256_short",
    )
    readonly_fields = fields

    @admin.display(description=_("audio"))
    def audio_format(self, stem: Stem) -> str:
        """One compact column ("44.1 kHz · 2 ch · WAV") keeps the row inside the page."""
        parts = []
        if stem.sample_rate:
            parts.append(f"{stem.sample_rate / 1000:g} kHz")
        if stem.channels:
            parts.append(f"{stem.channels} ch")
        if stem.format:
            parts.append(stem.format.upper())
        return " · ".join(parts) or "-"

    @admin.display(description=_("listen"))
    def player(self, stem: Stem) -> str:
        """The player with the waveform under it: one column, so six stems fit 1280 px."""
        if not stem.file:
            return "-"
        return format_html(
            '<span class="aiss-listen"><audio controls preload="metadata" class="aiss-player" '
            'data-stem="{}" src="{}"></audio><img class="aiss-waveform" loading="lazy" '
            'width="220" height="40" alt="{}" src="{}"></span>',
            stem.name,
            job_admin_url("stem", stem.job_id, stem.name),
            gettext("waveform of %(name)s") % {"name": stem.name},
            job_admin_url("stem_waveform", stem.job_id, stem.name),
        )

    @admin.display(description=_("download"))
    def download(self, stem: Stem) -> str:
        if not stem.file:
            return "-"
        return format_html(
            '<a href="{}?download=1" download>{}</a>',
            job_admin_url("stem", stem.job_id, stem.name),
            gettext("Download"),
        )

    @admin.display(description=_("SHA-256"))
    def sha256_short(self, stem: Stem) -> str:
        return cut_html(stem.sha256, code=True)

    @admin.display(description=_("size"))
    def size_display(self, stem: Stem) -> str:
        return filesizeformat(stem.size) if stem.size is not None else "-"


class WebhookEventInline(ReadOnlyInline):
    model = WebhookEvent
    fk_name = "job"
    fields = ("type", "event_id_short", "remote_status", "outcome", "deliveries", "received_at")
    readonly_fields = fields
    verbose_name_plural = _("webhook events")

    @admin.display(description=_("event id"))
    def event_id_short(self, event: WebhookEvent) -> str:
        return cut_html(event.event_id, code=True)
