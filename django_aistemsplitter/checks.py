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
``aistemsplitter.W004``  uploads would land in the project root (no ``MEDIA_ROOT``)
``aistemsplitter.I001``  Celery runs tasks eagerly outside DEBUG
``aistemsplitter.E020``  a job lifetime limit (runs, reconcile attempts, timeout) is not positive
``aistemsplitter.W020``  ``JOB_TIMEOUT`` is shorter than ``RECONCILE_AFTER``
``aistemsplitter.E030``  an audio limit (size, sample rates, channels, duration) is not positive
``aistemsplitter.E031``  ``MAX_DURATION_SECONDS`` gives an estimated cost too large to store
``aistemsplitter.W030``  the audio limits reach beyond what the engines handle
``aistemsplitter.W031``  ``ALLOW_PRIVATE_SOURCE_URLS`` is on outside DEBUG
``aistemsplitter.E040``  ``WEBHOOK_MAX_BYTES`` is not a positive integer
``aistemsplitter.E050``  ``SERVE_VIA_REDIRECT`` not None/True/False, or ``SERVE_URL_EXPIRY`` not > 0
``aistemsplitter.W050``  ``SERVE_URL_EXPIRY`` is longer than S3 signs for (7 days)
``aistemsplitter.E060``  ``DIRECT_UPLOAD`` unknown, or it does not fit the storage or the backend
``aistemsplitter.E061``  ``UPLOAD_TICKET_TTL`` or ``MAX_OPEN_UPLOAD_TICKETS`` is not positive
======================  ==========================================================
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Container, Iterable
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Info, Warning, register
from django.core.files.storage import storages
from django.urls import NoReverseMatch, reverse

from django_aistemsplitter import contract
from django_aistemsplitter.backends import get_backend_class
from django_aistemsplitter.backends.hosted import HostedBackend
from django_aistemsplitter.backends.local import LocalBackend
from django_aistemsplitter.conf import (
    DEFAULTS,
    SETTINGS_NAME,
    configured_webhook_secrets,
    get_setting,
    unknown_keys,
)
from django_aistemsplitter.destinations import DESTINATIONS
from django_aistemsplitter.engines import ENGINES, get_engine_class
from django_aistemsplitter.engines import limits as engine_limits
from django_aistemsplitter.exceptions import ConfigurationError
from django_aistemsplitter.filestreams import is_s3_storage
from django_aistemsplitter.models import SplitJob
from django_aistemsplitter.pricing import estimate_cost
from django_aistemsplitter.storage import get_storage

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
    try:
        return get_backend_class(get_setting("BACKEND")), None
    except ConfigurationError as exc:
        return None, str(exc)


def _is_hosted(cls: type) -> bool:
    """Whether ``cls`` talks to the AiStemSplitter API (and so needs an API key)."""
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
    try:
        secrets = configured_webhook_secrets()
    except (TypeError, ValueError):
        return "type"
    return None if secrets else "missing"


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


def _project_roots() -> set[str]:
    """Directories where stored files should never land: the cwd and ``BASE_DIR``."""
    roots = {os.path.realpath(os.getcwd())}
    base_dir = getattr(settings, "BASE_DIR", None)
    if base_dir:
        roots.add(os.path.realpath(str(base_dir)))
    return roots


@register(TAG)
def check_media_root(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W004: a file-system ``STORAGE`` without ``MEDIA_ROOT`` writes into the project.

    Django's ``FileSystemStorage`` falls back to the current directory when
    ``MEDIA_ROOT`` is empty, so a new project's uploads and stems would end up
    next to ``manage.py`` (and in its version control). Other storages (S3 ...)
    are not concerned.
    """
    if not _settings_ok():
        return []
    from django.core.files.storage import FileSystemStorage, storages
    from django.utils.module_loading import import_string

    alias = get_setting("STORAGE")
    config: Any = storages.backends.get(alias)  # the settings dict (typed as a Storage)
    if config is None:
        return []  # E006
    try:
        backend = import_string(config["BACKEND"])
    except (ImportError, KeyError):
        return []
    if not (isinstance(backend, type) and issubclass(backend, FileSystemStorage)):
        return []
    storage = storages[alias]
    if not isinstance(storage, FileSystemStorage):
        return []
    location = os.path.realpath(storage.location)
    if storage.base_location and location not in _project_roots():
        return []
    where = "the current directory" if not storage.base_location else "the project root"
    return [
        Warning(
            f"Uploaded audio and stems of the {alias!r} storage would be written to {where} "
            f"({location}): settings.MEDIA_ROOT is not set to a directory of its own.",
            hint=(
                "Set MEDIA_ROOT = BASE_DIR / 'media' (and MEDIA_URL = 'media/'), give the "
                f"{alias!r} storage a 'location' option, or point {_name('STORAGE')} at "
                "another storage alias."
            ),
            id="aistemsplitter.W004",
        )
    ]


def _positive_number(value: Any, *, integer: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if integer and not isinstance(value, int):
        return False
    return bool(value > 0) and value != float("inf")


def _not_positive(
    keys: Iterable[str], check_id: str, *, fractional: Container[str] = ()
) -> list[CheckMessage]:
    """Error ``check_id`` for each of the settings ``keys`` that is not a number above 0.

    Each must be a whole number unless it is ``fractional``; the hint names the
    default, which removing the setting restores.
    """
    messages: list[CheckMessage] = []
    for key in keys:
        value = get_setting(key)
        integer = key not in fractional
        if not _positive_number(value, integer=integer):
            kind = "a whole number of 1 or more" if integer else "a number above 0"
            messages.append(
                Error(
                    f"{_name(key)} is {value!r}; it must be {kind}.",
                    hint=f"Remove it to use the default ({DEFAULTS[key]!r}).",
                    id=check_id,
                )
            )
    return messages


@register(TAG)
def check_job_lifetime(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E020/W020: the limits that make every job end must be able to end one.

    ``MAX_UNFINISHED_RUNS`` and ``RECONCILE_MAX_ATTEMPTS`` of 0 (or less) would
    fail every job before it runs, a ``RECONCILE_BATCH_SIZE`` of 0 would never
    reconcile one; a ``JOB_TIMEOUT`` of 0 means none (allowed),
    a negative or infinite one is a mistake, and one shorter than
    ``RECONCILE_AFTER`` fails jobs before reconciliation ever looks at them.
    """
    if not _settings_ok():
        return []
    messages = _not_positive(
        ("MAX_UNFINISHED_RUNS", "RECONCILE_MAX_ATTEMPTS", "RECONCILE_BATCH_SIZE"),
        check_id="aistemsplitter.E020",
    )
    timeout = get_setting("JOB_TIMEOUT")
    if timeout in (None, 0):
        return messages
    if not _positive_number(timeout, integer=False):
        messages.append(
            Error(
                f"{_name('JOB_TIMEOUT')} is {timeout!r}; it must be a number of seconds above 0 "
                "(or None for no deadline).",
                hint=f"Remove it to use the default ({DEFAULTS['JOB_TIMEOUT']!r} s).",
                id="aistemsplitter.E020",
            )
        )
        return messages
    after = get_setting("RECONCILE_AFTER")
    if _positive_number(after, integer=False) and timeout < after:
        messages.append(
            Warning(
                f"{_name('JOB_TIMEOUT')} ({timeout} s) is shorter than "
                f"{_name('RECONCILE_AFTER')} ({after} s): jobs fail by their deadline before "
                "reconciliation ever nudges them.",
                hint="Give jobs more time than a job needs to count as stuck.",
                id="aistemsplitter.W020",
            )
        )
    return messages


#: Settings that bound the audio a request may bring; the duration may be fractional.
_AUDIO_LIMITS = (
    "MAX_UPLOAD_BYTES",
    "MIN_SAMPLE_RATE",
    "MAX_SAMPLE_RATE",
    "MAX_CHANNELS",
    "MAX_DURATION_SECONDS",
)


def _cost_ceiling() -> Decimal:
    """The first estimated cost the job's ``estimated_cost`` column cannot store."""
    field = SplitJob._meta.get_field("estimated_cost")
    digits = int(getattr(field, "max_digits", 0) or 0) - int(
        getattr(field, "decimal_places", 0) or 0
    )
    return Decimal(10) ** digits


@register(TAG)
def check_audio_limits(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E030/E031/W030: the audio limits of the validation path must make sense.

    Each is a positive number and the sample rate range is not empty (E030); the
    longest audio at ``PRICE_PER_MINUTE`` must give an estimated cost the job can
    store (E031, else a long upload would fail with a database error); and a range
    beyond what the engines handle (``engines.limits``) lets through audio that
    the local engines then refuse (W030).
    """
    if not _settings_ok():
        return []
    messages = _not_positive(
        _AUDIO_LIMITS, check_id="aistemsplitter.E030", fractional={"MAX_DURATION_SECONDS"}
    )
    if messages:
        return messages
    low, high = get_setting("MIN_SAMPLE_RATE"), get_setting("MAX_SAMPLE_RATE")
    if low > high:
        messages.append(
            Error(
                f"{_name('MIN_SAMPLE_RATE')} ({low} Hz) is above {_name('MAX_SAMPLE_RATE')} "
                f"({high} Hz), so every upload would be refused.",
                hint="Swap them, or remove both to use the defaults.",
                id="aistemsplitter.E030",
            )
        )
    longest = get_setting("MAX_DURATION_SECONDS")
    try:
        cost = estimate_cost(longest)
    except (ArithmeticError, ValueError):
        cost = None
    if cost is None or cost >= _cost_ceiling():
        messages.append(
            Error(
                f"{_name('MAX_DURATION_SECONDS')} ({longest} s) at {_name('PRICE_PER_MINUTE')} "
                f"gives an estimated cost the job cannot store (at most {_cost_ceiling() - 1}).",
                hint=f"Lower {_name('MAX_DURATION_SECONDS')}; an hour or a few is usual.",
                id="aistemsplitter.E031",
            )
        )
    outside = []
    if low < engine_limits.MIN_SAMPLE_RATE or high > engine_limits.MAX_SAMPLE_RATE:
        outside.append(
            f"sample rates {low}-{high} Hz (engines: "
            f"{engine_limits.MIN_SAMPLE_RATE}-{engine_limits.MAX_SAMPLE_RATE} Hz)"
        )
    if get_setting("MAX_CHANNELS") > engine_limits.MAX_CHANNELS:
        outside.append(
            f"{get_setting('MAX_CHANNELS')} channels (engines: {engine_limits.MAX_CHANNELS})"
        )
    if outside:
        messages.append(
            Warning(
                f"The audio limits accept {' and '.join(outside)}, beyond what the engines "
                "handle: such uploads are accepted, then the local engines refuse them.",
                hint=(
                    f"Keep {_name('MIN_SAMPLE_RATE')}, {_name('MAX_SAMPLE_RATE')} and "
                    f"{_name('MAX_CHANNELS')} within the engines' bounds (the defaults)."
                ),
                id="aistemsplitter.W030",
            )
        )
    return messages


@register(TAG)
def check_source_url_policy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W031: ``ALLOW_PRIVATE_SOURCE_URLS`` outside DEBUG lets users name internal hosts."""
    if not _settings_ok() or not get_setting("ALLOW_PRIVATE_SOURCE_URLS") or settings.DEBUG:
        return []
    return [
        Warning(
            f"{_name('ALLOW_PRIVATE_SOURCE_URLS')} is on outside DEBUG: a source_url may name "
            "loopback, private and link-local addresses (such as 169.254.169.254, where "
            "clouds serve instance credentials).",
            hint=f"Set {_name('ALLOW_PRIVATE_SOURCE_URLS')} = False in production.",
            id="aistemsplitter.W031",
        )
    ]


@register(TAG)
def check_webhook_body_limit(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E040: the webhook receiver reads at most ``WEBHOOK_MAX_BYTES`` of a body.

    Anything but a positive integer would make every delivery fail (0 refuses all of
    them, a string cannot be compared), so it is reported before the first request.
    """
    if not _settings_ok() or _positive_number(get_setting("WEBHOOK_MAX_BYTES"), integer=True):
        return []
    return [
        Error(
            f"{_name('WEBHOOK_MAX_BYTES')} must be a positive integer (bytes).",
            hint=f"Remove {_name('WEBHOOK_MAX_BYTES')} to use 1 MB, or set a number of bytes.",
            id="aistemsplitter.E040",
        )
    ]


#: Longest validity an S3 presigned URL may have (SigV4): 7 days.
_S3_MAX_EXPIRY = 7 * 24 * 3600


@register(TAG)
def check_serving(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E050/W050: how stems and source audio are sent (``SERVE_*``).

    ``SERVE_VIA_REDIRECT`` is a three-way switch: a string such as ``"false"``
    would read as true. ``SERVE_URL_EXPIRY`` signs every redirect: 0 or less
    makes links that are dead on arrival, and S3 refuses to sign for longer than
    seven days (the redirect would then fail on every request).
    """
    if not _settings_ok():
        return []
    messages: list[CheckMessage] = []
    redirect = get_setting("SERVE_VIA_REDIRECT")
    if redirect not in (None, True, False):
        messages.append(
            Error(
                f"{_name('SERVE_VIA_REDIRECT')} is {redirect!r}; use None (redirect when the "
                "storage signs URLs), True or False.",
                id="aistemsplitter.E050",
            )
        )
    expiry = get_setting("SERVE_URL_EXPIRY")
    if not _positive_number(expiry, integer=True):
        messages.append(
            Error(
                f"{_name('SERVE_URL_EXPIRY')} is {expiry!r}; it must be a whole number of "
                "seconds above 0.",
                hint=f"Remove it to use the default ({DEFAULTS['SERVE_URL_EXPIRY']!r} s).",
                id="aistemsplitter.E050",
            )
        )
    elif expiry > _S3_MAX_EXPIRY:
        messages.append(
            Warning(
                f"{_name('SERVE_URL_EXPIRY')} is {expiry} s; S3 signs URLs for at most "
                f"{_S3_MAX_EXPIRY} s (7 days), so redirects to S3 would fail.",
                hint="Use a shorter expiry; a player needs the page reloaded after it anyway.",
                id="aistemsplitter.W050",
            )
        )
    return messages


@register(TAG)
def check_direct_uploads(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E060/E061: where direct uploads go (``DIRECT_UPLOAD``) and how long tickets live.

    ``"s3"`` posts to the bucket of ``STORAGE``, so that storage must be
    django-storages' S3 backend; ``"hosted"`` uploads to the service, so the
    backend must be the hosted one. Otherwise every ticket would fail when a user
    asks for one, not at deploy time.
    """
    if not _settings_ok():
        return []
    messages = _not_positive(
        ("UPLOAD_TICKET_TTL", "MAX_OPEN_UPLOAD_TICKETS"), check_id="aistemsplitter.E061"
    )
    chosen = get_setting("DIRECT_UPLOAD")
    if chosen is None:
        return messages
    if chosen not in DESTINATIONS:
        messages.append(
            Error(
                f"{_name('DIRECT_UPLOAD')} is {chosen!r}; use None (chosen by configuration) "
                f"or one of: {', '.join(DESTINATIONS)}.",
                id="aistemsplitter.E060",
            )
        )
    elif chosen == "s3":
        try:
            storage = get_storage()
        except ConfigurationError:
            return messages  # E006
        if not is_s3_storage(storage):
            messages.append(
                Error(
                    f"{_name('DIRECT_UPLOAD')} is 's3' but {_name('STORAGE')} "
                    f"({get_setting('STORAGE')!r}) is not django-storages' S3 storage.",
                    hint="Use an S3 storage, or DIRECT_UPLOAD = None to choose by configuration.",
                    id="aistemsplitter.E060",
                )
            )
    elif chosen == "hosted":
        cls, _problem = _backend_class()
        if cls is not None and not _is_hosted(cls):
            messages.append(
                Error(
                    f"{_name('DIRECT_UPLOAD')} is 'hosted' but {_name('BACKEND')} is not the "
                    "hosted service: nothing would read the uploads.",
                    hint="Use DIRECT_UPLOAD = None to choose by configuration.",
                    id="aistemsplitter.E060",
                )
            )
    return messages
