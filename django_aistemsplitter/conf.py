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
    # Polling (when no webhook) and reconciliation of stuck jobs, in seconds.
    "POLL_INTERVAL": 2.0,
    "POLL_MAX_INTERVAL": 30.0,
    "POLL_TIMEOUT": 3600.0,
    "RECONCILE_AFTER": 900.0,
    "RECONCILE_INTERVAL": 300.0,
    # Stem downloads: only from these hosts ("*.example.com" wildcards; None means
    # the BASE_URL's host and its subdomains), https unless ALLOW_HTTP_DOWNLOADS.
    "ALLOWED_DOWNLOAD_HOSTS": None,
    "ALLOW_HTTP_DOWNLOADS": False,
    "MAX_STEM_BYTES": 2 * 1024**3,
    "MAX_UPLOAD_BYTES": 200 * 1024**2,
    # Estimated cost per audio minute in USD (the published range is $0.08-$0.14).
    "PRICE_PER_MINUTE": "0.14",
    # Local backend: engine short name or dotted path, and its options.
    "ENGINE": "spectral",
    "ENGINE_OPTIONS": {},
    # Celery: queue name (None = default queue) and retry bound of each task.
    "TASK_QUEUE": None,
    "TASK_MAX_RETRIES": 5,
    # Backoff between task retries: RETRY_BACKOFF * 2**retry seconds (with jitter,
    # at least a server's Retry-After), capped at RETRY_BACKOFF_MAX.
    "RETRY_BACKOFF": 2.0,
    "RETRY_BACKOFF_MAX": 300.0,
    # In-task attempts per stem download before the whole ingest task is retried,
    # so one flaky stem does not throw away the ones already downloaded.
    "DOWNLOAD_ATTEMPTS": 3,
    # Auto-split registrations: [{"model": "app.Model", "field": "audio", ...}].
    "AUTO_SPLIT": [],
}

#: Settings that hold secrets: never shown in the admin, logs or errors.
SECRET_SETTINGS = frozenset({"API_KEY", "WEBHOOK_SECRET"})

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


class _AppSettings:
    """Attribute access to :func:`get_setting`: ``app_settings.API_KEY``."""

    def __getattr__(self, name: str) -> Any:
        if name.isupper():
            try:
                return get_setting(name)
            except KeyError:
                pass
        raise AttributeError(name)

    def __repr__(self) -> str:
        return "<django-aistemsplitter settings>"


app_settings = _AppSettings()
