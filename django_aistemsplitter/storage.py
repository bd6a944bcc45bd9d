"""Where audio and stems are stored: the storage alias and path layout from settings.

The ``FileField``s point at :func:`get_storage` (a callable), so the configured
alias can change without a new migration, as Django's docs recommend.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from django.core.files.storage import Storage, storages
from django.utils import timezone
from django.utils.text import get_valid_filename

from django_aistemsplitter import contract
from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.exceptions import ConfigurationError, UnsafeStemNameError

if TYPE_CHECKING:
    from django_aistemsplitter.models import SplitJob, Stem


def get_storage() -> Storage:
    """The storage named by ``AISTEMSPLITTER["STORAGE"]`` (an alias of ``STORAGES``)."""
    alias = get_setting("STORAGE")
    try:
        return storages[alias]
    except Exception as exc:  # InvalidStorageError is not in Django 4.2's public API
        raise ConfigurationError(
            f"AISTEMSPLITTER['STORAGE'] is {alias!r}, which is not a key of settings.STORAGES."
        ) from exc


def _prefix(setting: str) -> str:
    return timezone.now().strftime(get_setting(setting)).strip("/")


def audio_upload_to(instance: SplitJob, filename: str) -> str:
    """``<UPLOAD_TO>/<job id>/<sanitised name>``: one folder per job, no collisions."""
    name = get_valid_filename(posixpath.basename(filename)) or "audio"
    return posixpath.join(_prefix("UPLOAD_TO"), str(instance.pk), name)


def stem_upload_to(instance: Stem, filename: str) -> str:
    """``<STEMS_UPLOAD_TO>/<job id>/<stem>.<ext>``; refuses names that could escape."""
    if not contract.is_safe_stem_name(instance.name):
        raise UnsafeStemNameError(f"refusing unsafe stem name {instance.name!r}")
    ext = posixpath.splitext(filename)[1].lower().lstrip(".") or "wav"
    if not ext.isalnum():
        raise UnsafeStemNameError(f"refusing unsafe stem extension {ext!r}")
    return posixpath.join(
        _prefix("STEMS_UPLOAD_TO"), str(instance.job_id), f"{instance.name}.{ext}"
    )
