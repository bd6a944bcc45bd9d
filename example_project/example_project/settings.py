"""Settings of the example project.

The defaults need no service and no network: SQLite, Celery in eager mode, and
the local backend with the embedded ``spectral`` engine. Environment variables
switch each part without editing this file:

=================================  =====================================================
``DATABASE_URL``                   ``postgres://user:pass@host:5432/name`` or
                                   ``sqlite:////abs/path.sqlite3``
``POSTGRES_DB`` / ``PGHOST``       PostgreSQL from libpq-style variables (``PGUSER``,
                                   ``PGPASSWORD``, ``PGPORT`` too)
``SQLITE_PATH``                    where the default SQLite database lives
``CELERY_BROKER_URL``              a real broker (e.g. ``redis://127.0.0.1:6379/0``);
                                   unset means tasks run eagerly in-process
``AISTEMSPLITTER_BACKEND``         ``local`` (default) or ``hosted``
``AISTEMSPLITTER_ENGINE``          local engine: ``spectral`` (default), ``demucs``, ...
``AISTEMSPLITTER_BASE_URL``        hosted API, e.g. the sandbox ``http://127.0.0.1:8765/v1``
``AISTEMSPLITTER_API_KEY``         read from the environment by the app itself
``AISTEMSPLITTER_WEBHOOK_SECRET``  idem
``AISTEMSPLITTER_WEBHOOK_BASE_URL`` public URL prefix the service posts webhooks to
``DJANGO_DEBUG``, ``DJANGO_SECRET_KEY``, ``DJANGO_ALLOWED_HOSTS``
=================================  =====================================================
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
env = os.environ.get

DEBUG = env("DJANGO_DEBUG", "1").lower() in {"1", "true", "yes", "on"}
SECRET_KEY = env("DJANGO_SECRET_KEY", "example-project-insecure-development-key")
ALLOWED_HOSTS = [
    h for h in env("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files for /api/schema/swagger/
    "django_aistemsplitter",
    "music",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]


def _database_from_url(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": unquote(parts.path[1:]) or ":memory:",
        }
    if parts.scheme in {"postgres", "postgresql", "pgsql"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
        }
    raise ValueError(f"DATABASE_URL scheme {parts.scheme!r} is not supported (postgres, sqlite)")


if env("DATABASE_URL"):
    DATABASES = {"default": _database_from_url(env("DATABASE_URL", ""))}
elif env("POSTGRES_DB") or env("PGHOST"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": env("POSTGRES_DB") or env("PGDATABASE") or "example_project",
            "USER": env("POSTGRES_USER") or env("PGUSER") or "postgres",
            "PASSWORD": env("POSTGRES_PASSWORD") or env("PGPASSWORD") or "",
            "HOST": env("PGHOST", "127.0.0.1"),
            "PORT": env("PGPORT", "5432"),
            # Kept between requests and between tasks (CELERY_DB_REUSE_MAX below).
            "CONN_MAX_AGE": 600,
            "CONN_HEALTH_CHECKS": True,
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env("SQLITE_PATH") or str(BASE_DIR / "db.sqlite3"),
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT") or BASE_DIR / "media")

# Celery: eager (in-process) unless a broker is configured.
CELERY_BROKER_URL = env("CELERY_BROKER_URL") or "memory://"
CELERY_TASK_ALWAYS_EAGER = not env("CELERY_BROKER_URL")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery otherwise opens a database connection for every task (docs/topics/celery.md).
CELERY_DB_REUSE_MAX = 1000
CELERY_BEAT_SCHEDULE = {
    "aistemsplitter-reconcile": {
        "task": "django_aistemsplitter.tasks.reconcile_splits",
        "schedule": 300.0,
    }
}

_base_url = env("AISTEMSPLITTER_BASE_URL")
AISTEMSPLITTER: dict[str, object] = {
    "BACKEND": env("AISTEMSPLITTER_BACKEND", "local"),
    "ENGINE": env("AISTEMSPLITTER_ENGINE", "spectral"),
    # API_KEY and WEBHOOK_SECRET are read from $AISTEMSPLITTER_API_KEY and
    # $AISTEMSPLITTER_WEBHOOK_SECRET by the app itself: never put secrets here.
    "WEBHOOK_BASE_URL": env("AISTEMSPLITTER_WEBHOOK_BASE_URL") or None,
}
if _base_url:
    AISTEMSPLITTER["BASE_URL"] = _base_url
    # The local sandbox serves stems over plain http.
    AISTEMSPLITTER["ALLOW_HTTP_DOWNLOADS"] = _base_url.startswith("http://")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"aistemsplitter_create": "60/hour"},
}

SPECTACULAR_SETTINGS = {
    "TITLE": "django-aistemsplitter example API",
    "SERVE_INCLUDE_SCHEMA": False,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_aistemsplitter": {"handlers": ["console"], "level": "WARNING"}},
}
