"""Django settings for the test suite.

PostgreSQL is the database (as in production). Outside CI, when it does not
answer, the suite falls back to SQLite with a loud warning; in CI it never does.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from tests.services import POSTGRES, in_ci, port_open

#: Set in a worker's environment: it keeps its database connections between tasks.
KEEP_CONNECTIONS_ENV = "AISTEMSPLITTER_TEST_KEEP_CONNECTIONS"

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
ALLOWED_HOSTS = ["*"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular_sidecar",  # Swagger UI's files for /api/schema/swagger/
    "django_aistemsplitter",
    "tests.testapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

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

_pg_name, _pg_host, _pg_port = POSTGRES
DATABASES: dict[str, dict[str, Any]]
if port_open(_pg_host, _pg_port) or in_ci():
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("PGDATABASE", "test"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "HOST": _pg_host,
            "PORT": str(_pg_port),
            "TEST": {"NAME": os.environ.get("AISTEMSPLITTER_TEST_DB", "test_aistemsplitter")},
        }
    }
    # A Celery worker started by the tests (tests/worker.py) works directly on
    # the test database the test process created.
    if os.environ.get("AISTEMSPLITTER_WORKER_DB_NAME"):
        DATABASES["default"]["NAME"] = os.environ["AISTEMSPLITTER_WORKER_DB_NAME"]
    # A worker that keeps its connections between tasks, as docs/topics/celery.md
    # recommends (tests/django/test_worker_connections.py).
    if os.environ.get(KEEP_CONNECTIONS_ENV):
        DATABASES["default"].update(CONN_MAX_AGE=600, CONN_HEALTH_CHECKS=True)
        CELERY_DB_REUSE_MAX = 1000
else:
    print(
        f"\n!!! {_pg_name} is not reachable on {_pg_host}:{_pg_port}: "
        "tests run on SQLite instead (never in CI) !!!\n",
        file=sys.stderr,
    )
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

STATIC_URL = "/static/"
MEDIA_URL = "/media/"
MEDIA_ROOT = os.environ.get("AISTEMSPLITTER_TEST_MEDIA_ROOT", "/tmp/aistemsplitter-test-media")

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

AISTEMSPLITTER: dict[str, object] = {
    "BACKEND": "local",
    "ENGINE": "passthrough",
}

# The worker subprocess gets the test's own settings (sandbox URL and key, queue,
# storages) as JSON, since it cannot see the test process's override_settings.
if os.environ.get("AISTEMSPLITTER_TEST_OVERRIDES"):
    _overrides = json.loads(os.environ["AISTEMSPLITTER_TEST_OVERRIDES"])
    AISTEMSPLITTER = {**AISTEMSPLITTER, **_overrides.get("AISTEMSPLITTER", {})}
    if "STORAGES" in _overrides:
        STORAGES = _overrides["STORAGES"]
