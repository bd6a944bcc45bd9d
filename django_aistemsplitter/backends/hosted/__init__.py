"""The hosted AiStemSplitter service: the backend and, beside it, its webhook receiver.

As with django-anymail's providers, what talks to the service
(:mod:`.backend`) and what the service calls back (:mod:`.webhook`) sit side by
side. Only the backend is imported here: the receiver is a view, reached through
``django_aistemsplitter.urls``, and importing it would pull the entry-point layer
into every user of the backend.
"""

from __future__ import annotations

from django_aistemsplitter.backends.hosted.backend import (
    ATTEMPT_METADATA_KEY,
    JOB_METADATA_KEY,
    HostedBackend,
    job_metadata,
    webhook_url,
)

__all__ = [
    "ATTEMPT_METADATA_KEY",
    "JOB_METADATA_KEY",
    "HostedBackend",
    "job_metadata",
    "webhook_url",
]
