"""Where audio and stems are stored: the storage alias, its per-call proxy, the path layout.

The ``FileField``s point at :func:`get_storage` (a callable), so the configured
alias can change without a new migration, as Django's docs recommend.
"""

from __future__ import annotations

import os
import posixpath
from typing import Any, Protocol

from django.core.files.storage import Storage, storages
from django.utils import timezone
from django.utils.text import get_valid_filename

from django_aistemsplitter import contract
from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.exceptions import ConfigurationError, UnsafeStemNameError


class _HasPk(Protocol):
    """What :func:`audio_upload_to` needs of a job (typed without importing the models)."""

    pk: Any


class _StemLike(Protocol):
    """What :func:`stem_upload_to` needs of a stem."""

    name: str
    job_id: Any


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


def audio_upload_to(instance: _HasPk, filename: str) -> str:
    """``<UPLOAD_TO>/<job id>/<sanitised name>``: one folder per job, no collisions."""
    name = get_valid_filename(posixpath.basename(filename)) or "audio"
    return posixpath.join(_prefix("UPLOAD_TO"), str(instance.pk), name)


def stem_upload_to(instance: _StemLike, filename: str) -> str:
    """``<STEMS_UPLOAD_TO>/<job id>/<stem>.<ext>``; refuses names that could escape."""
    if not contract.is_safe_stem_name(instance.name):
        raise UnsafeStemNameError(f"refusing unsafe stem name {instance.name!r}")
    ext = posixpath.splitext(filename)[1].lower().lstrip(".") or "wav"
    if not ext.isalnum():
        raise UnsafeStemNameError(f"refusing unsafe stem extension {ext!r}")
    return posixpath.join(
        _prefix("STEMS_UPLOAD_TO"), str(instance.job_id), f"{instance.name}.{ext}"
    )


class ConfiguredStorage(Storage):
    """The storage named by ``AISTEMSPLITTER["STORAGE"]``, looked up at every call.

    Django evaluates a FileField's storage callable once, when the model class is
    built, so pointing the fields at :func:`get_storage` directly would freeze the
    storage chosen at import time: a later settings change (``override_settings``,
    a test switching to S3) would reach our own code but not ``stem.file.open()``.
    Delegating per call keeps the fields and the ingest code on the same storage.
    """

    def _target(self) -> Storage:
        return get_storage()

    def open(self, name: str, mode: str = "rb") -> Any:
        return self._target().open(name, mode)

    def save(self, name: str | None, content: Any, max_length: int | None = None) -> str:
        return self._target().save(name, content, max_length=max_length)

    def generate_filename(self, filename: str | os.PathLike[str]) -> str:
        return self._target().generate_filename(filename)

    def get_valid_name(self, name: str) -> str:
        return self._target().get_valid_name(name)

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        return self._target().get_available_name(name, max_length=max_length)

    def path(self, name: str) -> str:
        return self._target().path(name)

    def delete(self, name: str) -> None:
        self._target().delete(name)

    def exists(self, name: str) -> bool:
        return self._target().exists(name)

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        return self._target().listdir(path)

    def size(self, name: str) -> int:
        return self._target().size(name)

    def url(self, name: str | None) -> str:
        return self._target().url(name)

    def get_accessed_time(self, name: str) -> Any:
        return self._target().get_accessed_time(name)

    def get_created_time(self, name: str) -> Any:
        return self._target().get_created_time(name)

    def get_modified_time(self, name: str) -> Any:
        return self._target().get_modified_time(name)

    def __getattr__(self, name: str) -> Any:
        # Backend-specific attributes (an S3 storage's ``bucket``, ``location``...).
        return getattr(self._target(), name)


_configured_storage = ConfiguredStorage()


def configured_storage() -> Storage:
    """The FileFields' storage callable: a per-call proxy of the STORAGE alias."""
    return _configured_storage
