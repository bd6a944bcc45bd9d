"""The one entry point to settings: ``AISTEMSPLITTER = {...}`` in the project's settings.

Values are read at call time (never cached at import) so ``override_settings``
works in tests and a process picks up what its settings say when the code runs.
Defaults live in :data:`DEFAULTS`; :func:`get_setting` is the only reader.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings as django_settings

from django_aistemsplitter import contract
from django_aistemsplitter.client.signing import parse_secrets
from django_aistemsplitter.engines.limits import MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from django_aistemsplitter.exceptions import ConfigurationError

SETTINGS_NAME = "AISTEMSPLITTER"

#: Every setting, with its default. ``None`` means "unset" (see each comment).
DEFAULTS: dict[str, Any] = {
    # Dotted path of a backend class, or the short names "hosted" and "local".
    "BACKEND": "local",
    # Hosted API. API_KEY falls back to $AISTEMSPLITTER_API_KEY.
    "API_KEY": None,
    "BASE_URL": contract.DEFAULT_BASE_URL,
    "HTTP_TIMEOUT": 30.0,
    "HTTP_MAX_RETRIES": 4,
    # Webhooks. WEBHOOK_SECRET falls back to $AISTEMSPLITTER_WEBHOOK_SECRET; a list
    # of secrets is accepted during a rotation. Without WEBHOOK_BASE_URL (the public
    # URL prefix the service can POST to), jobs are polled instead.
    "WEBHOOK_SECRET": None,
    "WEBHOOK_BASE_URL": None,
    "WEBHOOK_TOLERANCE": contract.SIGNATURE_TOLERANCE_SECONDS,
    "WEBHOOK_RETENTION_DAYS": 30,
    # Largest webhook body accepted, in bytes (events are a few KB): larger ones
    # are answered 413, on their Content-Length before reading, else while reading.
    "WEBHOOK_MAX_BYTES": 1024**2,
    # Model and format. DEFAULT_MODEL None means "the backend's default model"
    # (hosted: htdemucs_ft; local: the engine's), so defaults always work together.
    "DEFAULT_MODEL": None,
    "OUTPUT_FORMAT": contract.DEFAULT_OUTPUT_FORMAT,
    # Storage: an alias of Django's STORAGES, and the path prefixes used in it.
    "STORAGE": "default",
    "UPLOAD_TO": "aistemsplitter/audio/%Y/%m/",
    "STEMS_UPLOAD_TO": "aistemsplitter/stems/",
    # Whether the service can fetch the storage's URL of the source audio itself
    # (S3 presigned URLs can; local media on a dev box cannot) -> direct_url input.
    "DIRECT_URL_INPUT": False,
    # How the admin and the API send stems and source audio, after their permission
    # checks. None: redirect to a short-lived signed URL when the storage makes one
    # (django-storages' S3 backend with ``querystring_auth``), so the bytes bypass
    # Django; else stream through Django. True: always redirect to the storage's
    # URL. False: always stream through Django (with ranges and revalidation).
    "SERVE_VIA_REDIRECT": None,
    # Seconds a signed URL of that redirect stays valid (a player seeking later
    # needs the page reloaded).
    "SERVE_URL_EXPIRY": 3600,
    # Polling (when no webhook) and reconciliation of stuck jobs, in seconds.
    "POLL_INTERVAL": 2.0,
    "POLL_MAX_INTERVAL": 30.0,
    "POLL_TIMEOUT": 3600.0,
    "RECONCILE_AFTER": 900.0,
    "RECONCILE_INTERVAL": 300.0,
    # Reconciliation gives up on a job it has nudged this many times (the job fails
    # with RECONCILE_EXHAUSTED) instead of queueing it again forever.
    "RECONCILE_MAX_ATTEMPTS": 10,
    # Most jobs one reconcile run looks at; a larger backlog drains over the next
    # runs instead of one burst of queries and tasks.
    "RECONCILE_BATCH_SIZE": 500,
    # Seconds a job may take from submission (creation, if never submitted) to a
    # terminal status; reconciliation fails it with JOB_TIMEOUT after that.
    "JOB_TIMEOUT": 6 * 3600.0,
    # Stem downloads: only from these hosts ("*.example.com" wildcards; None means
    # the BASE_URL's host and its subdomains), https unless ALLOW_HTTP_DOWNLOADS.
    "ALLOWED_DOWNLOAD_HOSTS": None,
    "ALLOW_HTTP_DOWNLOADS": False,
    "MAX_STEM_BYTES": 2 * 1024**3,
    # Seconds one stem download may take in all, redirects included (HTTP_TIMEOUT
    # bounds each read); None: no overall limit.
    "DOWNLOAD_TIMEOUT": 900.0,
    # Largest audio upload in bytes; a bigger upload is refused while it streams in.
    "MAX_UPLOAD_BYTES": 200 * 1024**2,
    # Direct uploads (``POST /splits/uploads/``): where the browser sends the audio
    # itself. None chooses by configuration: a presigned S3 POST when STORAGE is
    # django-storages' S3 backend; the service's presigned upload on the hosted
    # backend; else the app's own signed, streaming upload view. Or name one:
    # "s3", "hosted", "app".
    "DIRECT_UPLOAD": None,
    # Seconds an upload ticket may be used for; an unused one's file is deleted
    # by reconcile once it has expired.
    "UPLOAD_TICKET_TTL": 3600,
    # Unused, unexpired tickets one user may hold at a time: each reserves up to
    # MAX_UPLOAD_BYTES of storage until it is used or purged.
    "MAX_OPEN_UPLOAD_TICKETS": 10,
    # Sample rates (Hz) and channel count an uploaded file may have; the defaults are
    # what the local engines handle (engines.limits), which a site may narrow.
    "MIN_SAMPLE_RATE": MIN_SAMPLE_RATE,
    "MAX_SAMPLE_RATE": MAX_SAMPLE_RATE,
    "MAX_CHANNELS": MAX_CHANNELS,
    # Longest audio accepted, in seconds. The length a file's header claims is also
    # checked against the file itself, so a tiny forged file cannot claim hours.
    "MAX_DURATION_SECONDS": 3600.0,
    # Whether a source_url may point at loopback, private, link-local or other
    # non-public addresses (checked after DNS resolution). True only for a
    # development box, e.g. with the sandbox on 127.0.0.1 fetching local files.
    "ALLOW_PRIVATE_SOURCE_URLS": False,
    # Estimated cost per audio minute in USD (the published range is $0.08-$0.14).
    "PRICE_PER_MINUTE": "0.14",
    # Local backend: engine short name or dotted path, and its options.
    "ENGINE": "spectral",
    "ENGINE_OPTIONS": {},
    # Run each local separation in a child process, so an engine that crashes (a
    # segfault in native code, the out-of-memory killer) fails its job instead of
    # killing the worker. False runs it inside the worker (debugging only: a crash
    # then kills the worker, and a quiet engine sends no heartbeat).
    "ENGINE_IN_SUBPROCESS": True,
    # A job whose last runs all died with their worker (the run never finished)
    # fails with WORKER_LOST when another run would start: no poison message loop.
    "MAX_UNFINISHED_RUNS": 3,
    # Celery: queue name (None = default queue) and retry bound of each task.
    "TASK_QUEUE": None,
    # Queue of the separations that run inside a worker (the submit step of jobs
    # on an in-process backend such as "local"); None keeps them on TASK_QUEUE.
    # Serve it with workers of its own, so a long separation never delays the
    # light tasks (remote submits, polls, ingests, reconcile) on TASK_QUEUE.
    "HEAVY_TASK_QUEUE": None,
    "TASK_MAX_RETRIES": 5,
    # Seconds ``split_audio`` waits for a worker to pick its job up before saying
    # that none runs (0: wait as long as POLL_TIMEOUT).
    "WORKER_TIMEOUT": 30.0,
    # Backoff between task retries: RETRY_BACKOFF * 2**retry seconds (with jitter,
    # at least a server's Retry-After), capped at RETRY_BACKOFF_MAX. The same cap
    # bounds how long the hosted backend's client waits on a Retry-After.
    "RETRY_BACKOFF": 2.0,
    "RETRY_BACKOFF_MAX": 300.0,
    # In-task attempts per stem download before the whole ingest task is retried,
    # so one flaky stem does not throw away the ones already downloaded.
    "DOWNLOAD_ATTEMPTS": 3,
    # Auto-split registrations: [{"model": "app.Model", "field": "audio", ...}].
    "AUTO_SPLIT": [],
}

_ENV_FALLBACKS = {
    "API_KEY": contract.API_KEY_ENV,
    "WEBHOOK_SECRET": contract.WEBHOOK_SECRET_ENV,
}

_MISSING = object()


def user_settings() -> dict[str, Any]:
    value = getattr(django_settings, SETTINGS_NAME, {})
    if not isinstance(value, dict):
        raise ConfigurationError(f"settings.{SETTINGS_NAME} must be a dict, not {type(value)!r}")
    return value


def get_setting(name: str, default: Any = _MISSING, *, required: bool = False) -> Any:
    """Read ``AISTEMSPLITTER[name]``, then its environment fallback, then the default.

    ``required=True`` raises :class:`ConfigurationError` naming the key (and the
    environment variable) when the value is empty.
    """
    if name not in DEFAULTS:
        raise KeyError(f"unknown django-aistemsplitter setting {name!r}")
    value = user_settings().get(name, _MISSING)
    if value is _MISSING and name in _ENV_FALLBACKS:
        value = os.environ.get(_ENV_FALLBACKS[name], _MISSING)
    if value is _MISSING:
        value = DEFAULTS[name] if default is _MISSING else default
    if required and value in (None, "", [], ()):
        env = _ENV_FALLBACKS.get(name)
        hint = f" or the environment variable {env}" if env else ""
        raise ConfigurationError(f"Set {SETTINGS_NAME}[{name!r}]{hint}.")
    return value


def unknown_keys() -> list[str]:
    """Keys in the user's dict that we do not know (typos), for the system check."""
    return sorted(set(user_settings()) - set(DEFAULTS))


def configured_webhook_secrets() -> tuple[str, ...]:
    """The webhook signing secret(s) from ``WEBHOOK_SECRET`` or its environment variable.

    One parser (the client's :func:`~django_aistemsplitter.client.signing.parse_secrets`)
    serves the webhook view, the system checks and the client: a list during a
    rotation, or commas in the environment variable, which holds one string.
    Returns ``()`` when none is set; raises ``TypeError``/``ValueError`` for a
    value of the wrong shape (the messages never show a secret).
    """
    return parse_secrets(
        get_setting("WEBHOOK_SECRET"), split_commas="WEBHOOK_SECRET" not in user_settings()
    )
