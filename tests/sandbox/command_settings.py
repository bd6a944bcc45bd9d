"""The least Django configuration the ``aistemsplitter_sandbox`` command needs."""

SECRET_KEY = "sandbox-command-tests-only"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_aistemsplitter",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
