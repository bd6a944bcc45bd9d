"""System checks: catch misconfiguration at ``manage.py check`` / startup, not mid-job.

Every message names the setting to change and never shows a secret's value.

======================  ==========================================================
``aistemsplitter.E000``  ``settings.AISTEMSPLITTER`` is not a dict
``aistemsplitter.E001``  remote (hosted) backend without an API key
``aistemsplitter.E002``  ``WEBHOOK_BASE_URL`` set without a ``WEBHOOK_SECRET``
``aistemsplitter.E003``  ``WEBHOOK_BASE_URL`` is not an absolute http(s) URL
``aistemsplitter.E004``  ``WEBHOOK_BASE_URL`` set but ``aistemsplitter:webhook`` does not reverse
``aistemsplitter.E005``  ``BACKEND`` cannot be loaded or is not a backend
``aistemsplitter.E006``  ``STORAGE`` is not an alias of ``settings.STORAGES``
``aistemsplitter.E007``  ``DEFAULT_MODEL`` is not served by the backend
``aistemsplitter.E008``  ``ENGINE`` cannot be loaded (local backend)
``aistemsplitter.E009``  ``WEBHOOK_SECRET`` is neither a string nor a list of strings
``aistemsplitter.W001``  unknown key in ``AISTEMSPLITTER`` (a typo?)
``aistemsplitter.W002``  ``WEBHOOK_BASE_URL`` uses plain http outside DEBUG
``aistemsplitter.W003``  ``WEBHOOK_BASE_URL`` already ends with the webhook path
``aistemsplitter.I001``  Celery runs tasks eagerly outside DEBUG
======================  ==========================================================
"""

from __future__ import annotations

import difflib
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Info, Warning, register
from django.urls import NoReverseMatch, reverse

from django_aistemsplitter import contract
from django_aistemsplitter.conf import DEFAULTS, SETTINGS_NAME, get_setting, unknown_keys
from django_aistemsplitter.exceptions import ConfigurationError

TAG = "aistemsplitter"
WEBHOOK_URL_NAME = "aistemsplitter:webhook"


def _name(key: str) -> str:
    return f"{SETTINGS_NAME}[{key!r}]"


def _settings_ok() -> bool:
    return isinstance(getattr(settings, SETTINGS_NAME, {}), dict)


@register(TAG)
def check_settings_shape(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if _settings_ok():
        return []
    return [
        Error(
            f"settings.{SETTINGS_NAME} must be a dict.",
            hint=f"Set {SETTINGS_NAME} = {{'BACKEND': 'local', ...}} in your settings.",
            id="aistemsplitter.E000",
        )
    ]


@register(TAG)
def check_unknown_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not _settings_ok():
        return []
    messages: list[CheckMessage] = []
    for key in unknown_keys():
        close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
        hint = f"Did you mean {close[0]!r}?" if close else "Remove it; it has no effect."
        messages.append(
            Warning(
                f"{SETTINGS_NAME} has an unknown key {key!r}.",
                hint=f"{hint} Known keys: {', '.join(sorted(DEFAULTS))}.",
                id="aistemsplitter.W001",
            )
        )
    return messages


def _backend_class() -> tuple[type | None, str | None]:
    """The configured backend class, or the reason it cannot be loaded."""
    from django_aistemsplitter.backends import get_backend_class

    try:
        return get_backend_class(get_setting("BACKEND")), None
    except ConfigurationError as exc:
        return None, str(exc)


def _is_hosted(cls: type) -> bool:
    """Whether ``cls`` talks to the AiStemSplitter API (and so needs an API key)."""
    try:
        from django_aistemsplitter.backends.hosted import HostedBackend
    except ImportError:
        return getattr(cls, "name", "") == "hosted"
    return issubclass(cls, HostedBackend)


@register(TAG)
def check_backend(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E005 (backend), E001 (API key), E007 (model) and E008 (engine)."""
    if not _settings_ok():
        return []
    cls, problem = _backend_class()
    if cls is None:
        return [
            Error(
                f"{_name('BACKEND')} cannot be used: {problem}",
                hint=(
                    f"Set {_name('BACKEND')} to 'hosted', 'local' or the dotted path of a "
                    "django_aistemsplitter.backends.BaseBackend subclass."
                ),
                id="aistemsplitter.E005",
            )
        ]
    messages: list[CheckMessage] = []
    if _is_hosted(cls) and not get_setting("API_KEY"):
        messages.append(
            Error(
                f"The {get_setting('BACKEND')!r} backend calls the hosted API but no API key "
                "is configured.",
                hint=(
                    f"Set {_name('API_KEY')} or the environment variable "
                    f"{contract.API_KEY_ENV}, or use {_name('BACKEND')} = 'local'."
                ),
                id="aistemsplitter.E001",
            )
        )
        return messages  # the backend cannot be built without its key
    from django_aistemsplitter.backends.local import LocalBackend

    if issubclass(cls, LocalBackend):
        messages.extend(_check_engine())
        if messages:
            return messages
    try:
        backend = cls()
        models = list(backend.available_models())
        normalize = backend.normalize_model
    except Exception as exc:
        messages.append(
            Error(
                f"{_name('BACKEND')} could not be initialised: {type(exc).__name__}: {exc}",
                hint=f"Check {_name('BACKEND')} and the options it reads.",
                id="aistemsplitter.E005",
            )
        )
        return messages
    model = get_setting("DEFAULT_MODEL")
    if model and normalize(str(model)) not in models:
        messages.append(
            Error(
                f"{_name('DEFAULT_MODEL')} is {model!r}, which the {get_setting('BACKEND')!r} "
                "backend does not serve.",
                hint=(
                    f"Use one of {', '.join(models)}, or remove {_name('DEFAULT_MODEL')} to use "
                    "the backend's default."
                ),
                id="aistemsplitter.E007",
            )
        )
    return messages


def _check_engine() -> list[CheckMessage]:
    from django_aistemsplitter.engines import ENGINES, get_engine_class

    engine = get_setting("ENGINE")
    try:
        get_engine_class(str(engine))
    except ConfigurationError as exc:
        return [
            Error(
                f"{_name('ENGINE')} cannot be loaded for the local backend: {exc}",
                hint=(
                    f"Set {_name('ENGINE')} to one of {', '.join(sorted(ENGINES))} or the "
                    "dotted path of an Engine subclass, and install what it needs."
                ),
                id="aistemsplitter.E008",
            )
        ]
    return []


@register(TAG)
def check_storage(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not _settings_ok():
        return []
    from django.core.files.storage import storages

    alias = get_setting("STORAGE")
    if alias in storages.backends:
        return []
    return [
        Error(
            f"{_name('STORAGE')} is {alias!r}, which is not a key of settings.STORAGES.",
            hint=(
                f"Set {_name('STORAGE')} to one of {', '.join(sorted(storages.backends))}, "
                "or add that alias to settings.STORAGES."
            ),
            id="aistemsplitter.E006",
        )
    ]


def _secret_problem() -> str | None:
    """None when usable; otherwise why not (never the value itself)."""
    value = get_setting("WEBHOOK_SECRET")
    if value in (None, "", [], ()):
        return "missing"
    if isinstance(value, str):
        return None if value.strip() else "missing"
    if isinstance(value, (list, tuple)) and all(isinstance(s, str) and s.strip() for s in value):
        return None
    return "type"


@register(TAG)
def check_webhooks(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not _settings_ok():
        return []
    messages: list[CheckMessage] = []
    signing_problem = _secret_problem()
    if signing_problem == "type":
        messages.append(
            Error(
                f"{_name('WEBHOOK_SECRET')} must be a string, or a list of non-empty strings "
                "during a rotation.",
                hint=f"Fix the type of {_name('WEBHOOK_SECRET')} (its value is not shown).",
                id="aistemsplitter.E009",
            )
        )
    base = get_setting("WEBHOOK_BASE_URL")
    if not base:
        return messages
    if signing_problem == "missing":
        messages.append(
            Error(
                f"{_name('WEBHOOK_BASE_URL')} is set but no webhook signing secret is configured, "
                "so every delivery would be refused.",
                hint=(
                    f"Set {_name('WEBHOOK_SECRET')} or the environment variable "
                    f"{contract.WEBHOOK_SECRET_ENV} to the account's webhook signing secret, "
                    f"or remove {_name('WEBHOOK_BASE_URL')} to poll instead."
                ),
                id="aistemsplitter.E002",
            )
        )
    parts = urlsplit(str(base)) if isinstance(base, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        messages.append(
            Error(
                f"{_name('WEBHOOK_BASE_URL')} must be an absolute http(s) URL, got {base!r}.",
                hint=f"Set {_name('WEBHOOK_BASE_URL')} to your site's public origin, "
                "e.g. 'https://app.example.com'.",
                id="aistemsplitter.E003",
            )
        )
        return messages
    if parts.query or parts.fragment:
        messages.append(
            Error(
                f"{_name('WEBHOOK_BASE_URL')} must not contain a query string or fragment.",
                hint="Use just the origin, e.g. 'https://app.example.com'; the path is "
                "added with reverse().",
                id="aistemsplitter.E003",
            )
        )
    if parts.scheme == "http" and not settings.DEBUG:
        messages.append(
            Warning(
                f"{_name('WEBHOOK_BASE_URL')} uses plain http outside DEBUG.",
                hint="Serve the webhook over https so deliveries cannot be read in transit.",
                id="aistemsplitter.W002",
            )
        )
    try:
        path = reverse(WEBHOOK_URL_NAME)
    except NoReverseMatch:
        messages.append(
            Error(
                f"{_name('WEBHOOK_BASE_URL')} is set but the URL {WEBHOOK_URL_NAME!r} cannot be "
                "reversed, so the service would be sent a URL that does not exist.",
                hint=(
                    'Add path("aistemsplitter/", include("django_aistemsplitter.urls")) to '
                    "your ROOT_URLCONF."
                ),
                id="aistemsplitter.E004",
            )
        )
        return messages
    if parts.path.rstrip("/") and parts.path.rstrip("/").endswith(path.rstrip("/")):
        messages.append(
            Warning(
                f"{_name('WEBHOOK_BASE_URL')} already ends with the webhook path {path!r}, "
                "which is appended to it again.",
                hint=f"Set {_name('WEBHOOK_BASE_URL')} to the origin only, "
                "e.g. 'https://app.example.com'.",
                id="aistemsplitter.W003",
            )
        )
    return messages


@register(TAG)
def check_celery(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    eager = getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False) or getattr(
        settings, "CELERY_ALWAYS_EAGER", False
    )
    if eager and not settings.DEBUG:
        return [
            Info(
                "Celery runs tasks eagerly (CELERY_TASK_ALWAYS_EAGER) outside DEBUG: splits, "
                "downloads and webhook follow-ups run inside the request or caller.",
                hint="Set CELERY_TASK_ALWAYS_EAGER = False and run a Celery worker in production.",
                id="aistemsplitter.I001",
            )
        ]
    return []
