"""Admin for verified webhook deliveries: an audit trail, never edited by hand."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from django_aistemsplitter.admin.display import json_html
from django_aistemsplitter.models import WebhookEvent


class WebhookEventAdmin(admin.ModelAdmin):
    """Verified deliveries, for auditing: never added or edited by hand."""

    list_display = (
        "type",
        "remote_id",
        "remote_status",
        "outcome",
        "deliveries",
        "job",
        "received_at",
    )
    list_filter = ("type", "outcome", "remote_status")
    search_fields = ("event_id", "remote_id")
    date_hierarchy = "received_at"
    list_select_related = ("job",)
    fields = (
        "event_id",
        "type",
        "remote_id",
        "remote_status",
        "job",
        "outcome",
        "reason",
        "deliveries",
        "received_at",
        "processed_at",
        "payload_display",
    )
    readonly_fields = fields

    @admin.display(description=_("payload"))
    def payload_display(self, event: WebhookEvent) -> str:
        return json_html(event.payload)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
