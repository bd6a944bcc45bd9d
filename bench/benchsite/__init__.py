"""The Django project the benchmarks serve and work in (PostgreSQL, Redis, gunicorn, Celery).

Like any project using the app, it loads its Celery app at import so that the
package's tasks bind to it in the web server and in the workers alike.
"""

from benchsite.celery import app as celery_app

__all__ = ["celery_app"]
