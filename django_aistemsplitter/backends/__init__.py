"""Split backends, resolved from ``AISTEMSPLITTER["BACKEND"]``.

``get_backend()`` returns the configured backend; ``get_backend("hosted")``,
``get_backend("local")`` or a dotted path to a :class:`BaseBackend` subclass
pick one explicitly (a job remembers its backend's name for later calls).
"""

from __future__ import annotations

from typing import Any

from django_aistemsplitter.backends.base import (
    BaseBackend,
    InProcessBackend,
    LocalResult,
    ProgressCallback,
    RemoteBackend,
)
from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.loading import load_class

__all__ = [
    "BACKENDS",
    "BaseBackend",
    "InProcessBackend",
    "LocalResult",
    "ProgressCallback",
    "RemoteBackend",
    "get_backend",
    "get_backend_class",
]

#: Short name -> dotted path.
BACKENDS: dict[str, str] = {
    "hosted": "django_aistemsplitter.backends.hosted.HostedBackend",
    "local": "django_aistemsplitter.backends.local.LocalBackend",
}


def get_backend_class(name: str) -> type[BaseBackend]:
    return load_class(name, BACKENDS, BaseBackend, "backend")


def get_backend(name: str | None = None, **options: Any) -> BaseBackend:
    """An instance of backend ``name`` (default: the ``BACKEND`` setting).

    Backends are cheap to build and read settings when built, so none is cached:
    ``override_settings`` and per-job backends keep working.
    """
    return get_backend_class(name or get_setting("BACKEND"))(**options)
