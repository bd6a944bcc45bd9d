"""Settings of the bench project, read from the environment ``bench/run.py`` prepares.

* ``AISTEMSPLITTER_BENCH_DB``: the PostgreSQL database (created and migrated by
  the run); host, port and user from ``PGHOST``/``PGPORT``/``PGUSER`` as in the tests;
* ``AISTEMSPLITTER_BENCH_MEDIA``: the media root (a scratch directory of the run);
* ``AISTEMSPLITTER_BENCH_SETTINGS``: JSON with this process's ``AISTEMSPLITTER``
  dict and optionally ``STORAGES`` (the web server, each worker and each ingest
  child get the values of the figure they serve);
* ``CELERY_BROKER_URL``: Redis (db 14 unless given).

A production-like stack otherwise: ``DEBUG`` off, the usual middleware, sessions
in the database, DRF's default authentication (the API figures log in with a
session cookie, as a browser would).
"""

from __future__ import annotations

import json
import os
from typing import Any

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "benchsite.urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "rest_framework",
    "django_aistemsplitter",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("AISTEMSPLITTER_BENCH_DB", "bench_aistemsplitter"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        # Persistent connections, as a production deployment keeps them.
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
}

STATIC_URL = "/static/"
MEDIA_URL = "/media/"
MEDIA_ROOT = os.environ.get("AISTEMSPLITTER_BENCH_MEDIA", "/tmp/aistemsplitter-bench-media")

STORAGES: dict[str, Any] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# As docs/topics/celery.md recommends: workers keep their database connections
# between tasks (Celery's default opens one per task).
CELERY_DB_REUSE_MAX = 1000
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

REST_FRAMEWORK = {
    # Creating splits is throttled per user by default; the bench creates many.
    "DEFAULT_THROTTLE_RATES": {"aistemsplitter_create": None},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}

AISTEMSPLITTER: dict[str, Any] = {"BACKEND": "local", "ENGINE": "passthrough"}

_overrides = json.loads(os.environ.get("AISTEMSPLITTER_BENCH_SETTINGS") or "{}")
AISTEMSPLITTER = {**AISTEMSPLITTER, **_overrides.get("AISTEMSPLITTER", {})}
if "STORAGES" in _overrides:
    STORAGES = _overrides["STORAGES"]
