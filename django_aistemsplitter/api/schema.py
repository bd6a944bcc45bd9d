"""OpenAPI schema helpers: the served schema describes this API only.

``SpectacularAPIView`` walks the whole project's URLs; the preprocessing hook
keeps only this package's endpoints, so the schema is the same in any project
(and other DRF views without drf-spectacular's ``AutoSchema`` cannot break it).
"""

from __future__ import annotations

from typing import Any

API_MODULE_PREFIX = "django_aistemsplitter.api."


def only_this_api(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """Keep the endpoints whose view class is defined in :mod:`django_aistemsplitter.api`."""
    kept = []
    for endpoint in endpoints:
        callback = endpoint[-1]
        cls = getattr(callback, "cls", None)
        if cls is not None and cls.__module__.startswith(API_MODULE_PREFIX):
            kept.append(endpoint)
    return kept
