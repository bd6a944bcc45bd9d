from tests.api.helpers import celery_eager, clear_cache, media_root  # noqa: F401
