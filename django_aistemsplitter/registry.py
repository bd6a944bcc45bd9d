"""Auto-split: split a model's audio whenever it changes.

``register(Track, field="audio")`` (or an ``AUTO_SPLIT`` settings entry) records
which field of which model to split; the receivers in
:mod:`django_aistemsplitter.autosplit` remember the file name a row had before
``save()`` and create a :class:`SplitJob` linked to the instance when the name
changed. Saving without touching the audio does nothing. This module only holds
the registrations, so the services can read them without importing the
receivers that call the services. Instances reach their jobs
through ``instance.split_jobs`` (added on register) or
:func:`split_jobs_for`; a ``GenericRelation`` is deliberately not used, since
joining the jobs' varchar ``object_id`` to an integer primary key is refused by
PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db import models

from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.exceptions import ConfigurationError
from django_aistemsplitter.models import SplitJob, SplitJobQuerySet, Stem

__all__ = [
    "register",
    "register_from_settings",
    "registration_for",
    "split_jobs_for",
    "stems_for",
    "unregister",
]

#: model class -> its options (field, stem_model, output_format, owner_field).
_registry: dict[type[models.Model], dict[str, Any]] = {}


def split_jobs_for(instance: models.Model) -> SplitJobQuerySet:
    """Every split job of ``instance``, newest first."""
    return SplitJob.objects.for_object(instance)


def stems_for(instance: models.Model) -> models.QuerySet[Stem]:
    """The stems of the newest succeeded job of ``instance`` (empty if none)."""
    latest = split_jobs_for(instance).filter(status=SplitJob.Status.SUCCEEDED).first()
    if latest is None:
        return Stem.objects.none()
    return latest.stems.all()


class _SplitJobsDescriptor:
    """``Track.split_jobs`` on an instance: that instance's jobs queryset."""

    def __get__(self, instance: models.Model | None, owner: type) -> Any:
        if instance is None:
            return self
        return split_jobs_for(instance)


def registration_for(model: type[models.Model]) -> dict[str, Any] | None:
    """The options ``model`` was registered with, or None."""
    for cls in model.__mro__:
        if cls in _registry:
            return _registry[cls]
    return None


def registered_options(model: type[models.Model]) -> dict[str, Any] | None:
    """The options of ``model`` itself (not of a parent class), or None."""
    return _registry.get(model)


def register(
    model: type[models.Model],
    field: str = "audio",
    stem_model: str | None = None,
    output_format: str | None = None,
    owner_field: str | None = None,
) -> type[models.Model]:
    """Split ``model.<field>`` whenever it changes; usable as a class decorator.

    Registering again replaces the options. Adds ``model.split_jobs`` unless the
    model already defines that name.
    """
    try:
        model._meta.get_field(field)
    except Exception as exc:
        raise ConfigurationError(f"{model._meta.label} has no field {field!r}") from exc
    _registry[model] = {
        "field": field,
        "stem_model": stem_model,
        "output_format": output_format,
        "owner_field": owner_field,
    }
    if not hasattr(model, "split_jobs"):
        model.split_jobs = _SplitJobsDescriptor()  # type: ignore[attr-defined]
    return model


def unregister(model: type[models.Model]) -> None:
    """Stop auto-splitting ``model`` (tests, or a project overriding settings)."""
    _registry.pop(model, None)
    if isinstance(model.__dict__.get("split_jobs"), _SplitJobsDescriptor):
        delattr(model, "split_jobs")


def register_from_settings() -> None:
    """Register every ``AUTO_SPLIT`` entry: ``{"model": "app.Model", "field": ...}``."""
    for entry in get_setting("AUTO_SPLIT") or []:
        if not isinstance(entry, dict) or "model" not in entry:
            raise ConfigurationError(
                "Each AISTEMSPLITTER['AUTO_SPLIT'] entry is a dict with a 'model' key "
                f"('app_label.Model'), not {entry!r}."
            )
        try:
            model = apps.get_model(entry["model"])
        except (LookupError, ValueError) as exc:
            raise ConfigurationError(
                f"AUTO_SPLIT names {entry['model']!r}, which is not an installed model."
            ) from exc
        options = {k: v for k, v in entry.items() if k != "model"}
        unknown = set(options) - {"field", "stem_model", "output_format", "owner_field"}
        if unknown:
            raise ConfigurationError(f"AUTO_SPLIT entry for {entry['model']}: unknown {unknown}")
        register(model, **options)
