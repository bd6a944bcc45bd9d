"""Where a direct upload's bytes go, and how they are read back, kept or thrown away.

A direct upload sends the audio from the browser (or a script) straight to
where it is kept, so no Django worker is tied up streaming a 200 MB file. Three
destinations speak the same four verbs, so the ticket flow
(:mod:`django_aistemsplitter.tickets`) is one piece of code whatever the site
runs on:

``s3``
    a presigned S3 ``POST`` to the bucket of ``STORAGE`` (django-storages' S3
    backend), limited to the ticket's key and size;
``hosted``
    the service's own presigned upload (``POST /audio/uploads``): with the
    hosted backend and no S3, the job is submitted with that upload and no byte
    passes through Django or our storage until the stems come back;
``app``
    this site's signed, streaming upload view, for plain file storage: the bytes
    do pass through Django, but at constant memory and never buffered whole.

``DIRECT_UPLOAD`` (None: chosen by configuration) names the one in use. The shared
types live in :mod:`.base`, one module per destination beside it; this module
holds the table and the choice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.destinations.app import AppDestination
from django_aistemsplitter.destinations.base import (
    Destination,
    NotUploadedError,
    UploadedAudio,
    UploadOffer,
)
from django_aistemsplitter.destinations.hosted import HostedDestination
from django_aistemsplitter.destinations.s3 import S3Destination
from django_aistemsplitter.exceptions import ConfigurationError

if TYPE_CHECKING:
    from django_aistemsplitter.backends import BaseBackend

__all__ = [
    "DESTINATIONS",
    "Destination",
    "NotUploadedError",
    "UploadOffer",
    "UploadedAudio",
    "choose",
    "get_destination",
]

#: Every destination by the name ``DIRECT_UPLOAD`` and the tickets use.
DESTINATIONS: dict[str, type[Destination]] = {
    "s3": S3Destination,
    "hosted": HostedDestination,
    "app": AppDestination,
}


def get_destination(name: str, **options: Any) -> Destination:
    """The destination called ``name``; :class:`ConfigurationError` for an unknown one."""
    try:
        cls = DESTINATIONS[name]
    except KeyError:
        known = ", ".join(DESTINATIONS)
        raise ConfigurationError(
            f"AISTEMSPLITTER['DIRECT_UPLOAD'] is {name!r}; the destinations are: {known}."
        ) from None
    return cls(**options)


def choose(backend: BaseBackend) -> str:
    """The destination of new tickets for jobs on ``backend``.

    ``DIRECT_UPLOAD`` when set; else ``s3`` when ``STORAGE`` is an S3 storage,
    ``hosted`` when the backend uploads to the service, ``app`` otherwise.
    """
    configured = get_setting("DIRECT_UPLOAD")
    if configured:
        get_destination(str(configured))  # an unknown name fails here, clearly
        return str(configured)
    for name in ("s3", "hosted"):
        if DESTINATIONS[name].suits(backend):
            return name
    return "app"
