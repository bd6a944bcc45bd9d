"""The hosted AiStemSplitter service, through the package's API client.

Audio reaches the service one of two ways: as a ``direct_url`` the service
fetches itself (when ``DIRECT_URL_INPUT`` is on and the storage hands out URLs,
e.g. S3 presigned ones), or through the upload flow, streamed from storage in
constant memory. Every create carries the job's idempotency key, so a Celery
task redelivered after a crash replays the same remote split instead of paying
for a second one.
"""

from __future__ import annotations

import logging
import mimetypes
import posixpath
import threading
from typing import TYPE_CHECKING, Any

from django.urls import NoReverseMatch, reverse

from django_aistemsplitter import contract
from django_aistemsplitter.backends.base import RemoteBackend
from django_aistemsplitter.client import AiStemSplitter
from django_aistemsplitter.client.types import Split
from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.filestreams import open_stored

if TYPE_CHECKING:
    from django_aistemsplitter.models import SplitJob

logger = logging.getLogger(__name__)

#: Metadata keys carrying our job id and the idempotency key of this attempt, so a
#: webhook can find its job even when it arrives before the submitting task
#: recorded the remote id, and a late event of an attempt that was since retried
#: (a new key) cannot be mistaken for the current one.
JOB_METADATA_KEY = "aistemsplitter_job"
ATTEMPT_METADATA_KEY = "aistemsplitter_attempt"


def job_metadata(job: SplitJob) -> dict[str, str]:
    """What identifies ``job`` and its current attempt in the remote split's metadata."""
    return {JOB_METADATA_KEY: str(job.pk), ATTEMPT_METADATA_KEY: job.idempotency_key}


def webhook_url() -> str | None:
    """``WEBHOOK_BASE_URL`` + the webhook route, or None (then jobs are polled)."""
    base = get_setting("WEBHOOK_BASE_URL")
    if not base:
        return None
    try:
        path = reverse("aistemsplitter:webhook")
    except NoReverseMatch:
        logger.warning(
            "WEBHOOK_BASE_URL is set but the 'aistemsplitter:webhook' route is not "
            "installed (include django_aistemsplitter.urls); polling instead."
        )
        return None
    return str(base).rstrip("/") + path


_clients: dict[tuple[Any, ...], AiStemSplitter] = {}
_clients_lock = threading.Lock()


def shared_client() -> AiStemSplitter:
    """One long-lived API client per configuration (key, URL, timeout, retries, cap).

    Backends are built per call (``get_backend()``), but their HTTP client is
    kept, so a worker reuses its connections to the service instead of opening
    a new pool for every task. A changed setting (``override_settings``, key
    rotation) gets a client of its own. :func:`close_clients` closes them all;
    the app closes them when a Celery worker process shuts down.
    """
    options = (
        get_setting("API_KEY", required=True),
        get_setting("BASE_URL"),
        float(get_setting("HTTP_TIMEOUT")),
        int(get_setting("HTTP_MAX_RETRIES")),
        float(get_setting("RETRY_BACKOFF_MAX")),
    )
    with _clients_lock:
        client = _clients.get(options)
        if client is None:
            api_key, base_url, timeout, max_retries, max_retry_after = options
            # One cap for a server's Retry-After, here and in the task backoff.
            client = AiStemSplitter(
                api_key=api_key,
                base_url=base_url,
                timeout=timeout,
                max_retries=max_retries,
                max_retry_after=max_retry_after,
            )
            _clients[options] = client
        return client


def close_clients(**_signal_kwargs: Any) -> None:
    """Close every shared client (connected to Celery's worker shutdown signals)."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()


class HostedBackend(RemoteBackend):
    name = "hosted"

    def __init__(self, client: AiStemSplitter | None = None, **options: Any) -> None:
        super().__init__(**options)
        self._client = client

    @property
    def client(self) -> AiStemSplitter:
        """The shared client of the current settings (see :func:`shared_client`)."""
        if self._client is None:
            self._client = shared_client()
        return self._client

    @property
    def default_model(self) -> str:
        return contract.DEFAULT_MODEL

    def available_models(self) -> list[str]:
        return [
            contract.DEFAULT_MODEL,
            *(m for m in contract.MODELS if m != contract.DEFAULT_MODEL),
        ]

    def uses_webhooks(self) -> bool:
        return webhook_url() is not None

    def _new_input(self, job: SplitJob) -> dict[str, Any]:
        """The ``input`` of the create call: a URL the service fetches, or an upload."""
        if job.source_url:
            return {"type": "direct_url", "url": job.source_url}
        if get_setting("DIRECT_URL_INPUT"):
            try:
                url = job.audio.url
            except (NotImplementedError, ValueError):
                url = ""
            if url.startswith(("https://", "http://")):
                return {"type": "direct_url", "url": url}
        filename = job.original_filename or posixpath.basename(job.audio.name or "") or "audio.wav"
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        # A file object, never read() whole: the client streams it in chunks, and
        # the reader asks storage for ranges (django-storages' S3 file would
        # download the whole object into memory first).
        reader, _size = open_stored(job.audio)
        with reader as fh:
            uploaded = self.client.upload_file(fh, filename=filename, content_type=content_type)
        return dict(uploaded.to_input())

    def input_for(self, job: SplitJob) -> dict[str, Any]:
        """The job's input, created once and remembered on the job.

        A redelivered submit must send the very same body under the job's
        idempotency key (a new upload id or presigned URL would be a 409), so the
        input is stored before the create call and reused from then on.
        """
        if job.remote_input:
            return dict(job.remote_input)
        audio_input = self._new_input(job)
        type(job).objects.filter(pk=job.pk, remote_input={}).update(remote_input=audio_input)
        job.refresh_from_db(fields=["remote_input"])
        return dict(job.remote_input)

    def submit(self, job: SplitJob) -> Split:
        audio_input = self.input_for(job)
        metadata = {**(job.metadata or {}), **job_metadata(job)}
        split = self.client.create_split(
            input=audio_input,
            stem_model=job.stem_model,
            webhook_url=webhook_url(),
            output_format=job.output_format,
            metadata=metadata,
            idempotency_key=job.idempotency_key,
        )
        logger.info("split job %s submitted as %s (%s)", job.pk, split.id, split.status)
        return split

    def fetch(self, job: SplitJob) -> Split:
        if not job.remote_id:
            raise ValueError(f"split job {job.pk} has no remote id yet")
        return self.client.get_split(job.remote_id)
