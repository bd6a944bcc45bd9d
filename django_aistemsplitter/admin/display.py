"""HTML fragments the admin pages and the status endpoint share.

The status badge and progress bar are rendered here once: the change list,
the change view and the JSON the page polls (which swaps them in place) all
show the same markup, so a colour or label changes in one spot.
"""

from __future__ import annotations

import json
from typing import Any

from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from django_aistemsplitter.models import SplitJob, SplitStatus
from django_aistemsplitter.pricing import (  # noqa: F401 - ENGINE_SECONDS_KEY is part of the admin's API
    ENGINE_SECONDS_KEY,
    engine_seconds,
    runs_in_process,
)

#: Badge colour of each status (text is always shown too: colour is never the only cue).
STATUS_COLOURS: dict[str, str] = {
    "pending": "#6c757d",
    "submitted": "#0d6efd",
    "processing": "#0d6efd",
    "downloading": "#6f42c1",
    "succeeded": "#198754",
    "failed": "#dc3545",
    "cancelled": "#856404",
}


def job_admin_url(name: str, *args: Any) -> str:
    """The URL of one of the split job admin's views (``change``, ``stem``, ...)."""
    return reverse(f"admin:aistemsplitter_splitjob_{name}", args=args)


def status_badge_html(job: SplitJob) -> SafeString:
    """The job's status as a coloured badge with its label."""
    return format_html(
        '<span class="aiss-badge aiss-status-{}" data-aiss-badge style="background:{}">{}</span>',
        job.status,
        STATUS_COLOURS.get(job.status, "#6c757d"),
        job.get_status_display(),
    )


def progress_html(job: SplitJob) -> SafeString:
    """An accessible progress bar; a succeeded job always shows 100 %."""
    percent = round(max(0.0, min(1.0, job.progress or 0.0)) * 100)
    if job.status == SplitStatus.SUCCEEDED:
        percent = 100
    return format_html(
        '<span class="aiss-progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" '
        'aria-valuenow="{}" data-aiss-progress><span class="aiss-progress-bar" style="width:{}%">'
        '</span><span class="aiss-progress-label">{}%</span></span>',
        percent,
        percent,
        percent,
    )


def cut_html(value: str, *, code: bool = False) -> SafeString:
    """``value`` on one line, cut with an ellipsis by CSS; the whole value is its tooltip.

    For hashes and ids: the cell stays narrow, and the full text is still there
    to hover, select and copy.
    """
    if not value:
        return format_html("{}", "-")
    if code:
        return format_html('<code class="aiss-cut" title="{}">{}</code>', value, value)
    return format_html('<span class="aiss-cut" title="{}">{}</span>', value, value)


def cost_text(job: SplitJob) -> str:
    """What a job cost: the service's credits and estimate, or an in-process engine time.

    Jobs split in process cost no money, so they never show the (hosted) dollar
    estimate stored on every job; they show the engine seconds instead, or
    "-" when none were recorded.
    """
    parts = []
    if job.credits_used is not None:
        parts.append(gettext("%(n)s credits") % {"n": f"{job.credits_used:g}"})
    if runs_in_process(job):
        seconds = engine_seconds(job)
        if seconds is not None:
            parts.append(gettext("%(s)s s engine time") % {"s": f"{seconds:.1f}"})
    elif job.estimated_cost is not None:
        parts.append(f"${job.estimated_cost:.4f}")
    return " / ".join(parts) or "-"


def json_html(value: Any) -> SafeString:
    """A JSON document (job metadata, webhook payload) as an escaped, indented block."""
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))
