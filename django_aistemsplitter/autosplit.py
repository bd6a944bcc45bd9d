"""Auto-split receivers: split a registered model's audio whenever it changes.

One ``pre_save``/``post_save`` pair serves every model; each save looks its
model up in :mod:`django_aistemsplitter.registry` and does nothing unless it is
registered. ``pre_save`` remembers the file name the row had; when the name
changed, ``post_save`` asks for :func:`django_aistemsplitter.services.split` to
run once the save's transaction commits (a rollback splits nothing; an error
while starting the split is logged, never raised into the save). The app
connects them in ``AppConfig.ready()``.

``bulk_create()`` and ``queryset.update()`` send no signals, so they split
nothing: call :func:`django_aistemsplitter.services.split_queryset` after them.

Jobs point at their instance generically (content type and id), so the database
cannot cascade; a ``post_delete`` receiver does it instead: deleting a registered
instance deletes its split jobs in the same transaction (and, once that commits,
their audio and stem files).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.db import DEFAULT_DB_ALIAS, models, transaction
from django.db.models.signals import post_delete, post_save, pre_save

from django_aistemsplitter.exceptions import AiStemSplitterError
from django_aistemsplitter.models import SplitJob
from django_aistemsplitter.registry import registered_options
from django_aistemsplitter.services import split

logger = logging.getLogger(__name__)

__all__ = ["connect"]

_OLD_NAME_ATTR = "_aistemsplitter_old_audio"


def _file_name(instance: models.Model, field: str) -> str:
    value = getattr(instance, field, None)
    return str(getattr(value, "name", "") or "")


def _remember_old_name(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    options = registered_options(sender)
    if options is None or kwargs.get("raw"):
        return
    field = options["field"]
    old = ""
    if instance.pk is not None and not instance._state.adding:
        old = (
            sender._default_manager.filter(pk=instance.pk).values_list(field, flat=True).first()
            or ""
        )
    setattr(instance, _OLD_NAME_ATTR, str(old))


def _split_if_changed(
    sender: type[models.Model], instance: models.Model, created: bool, **kwargs: Any
) -> None:
    options = registered_options(sender)
    if options is None or kwargs.get("raw"):
        return
    field = options["field"]
    new = _file_name(instance, field)
    old = getattr(instance, _OLD_NAME_ATTR, "")
    if not new or new == old:
        return
    if (update_fields := kwargs.get("update_fields")) and field not in update_fields:
        return
    setattr(instance, _OLD_NAME_ATTR, new)
    # Nothing is copied or created inside the user's transaction: a rollback leaves
    # no job and no audio copy, and a slow storage does not hold the transaction open.
    using = kwargs.get("using") or DEFAULT_DB_ALIAS
    transaction.on_commit(
        functools.partial(_start_split, sender, instance.pk, new, dict(options), using),
        using=using,
    )


def _start_split(
    model: type[models.Model], pk: Any, name: str, options: dict[str, Any], using: str
) -> None:
    """Split the committed row's audio, unless it is gone or holds another file by now.

    Runs after the commit, so nothing raised here could undo the user's save; it
    is logged instead (every exception: a storage's own errors are not ``OSError``).
    """
    field = options["field"]
    label = model._meta.label
    try:
        instance = model._default_manager.using(using).filter(pk=pk).first()
        if instance is None or _file_name(instance, field) != name:
            return  # deleted since, or saved again with another file (that save splits)
        split(
            instance,
            source_field=field,
            stem_model=options.get("stem_model"),
            output_format=options.get("output_format"),
        )
    except (AiStemSplitterError, ValueError) as exc:
        # The audio cannot be split (not audio, too long, an unknown model...).
        logger.warning("auto-split of %s %s (field %r) skipped: %s", label, pk, field, exc)
    except Exception:
        logger.exception("auto-split of %s %s (field %r) failed to start", label, pk, field)


def _delete_jobs(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    if registered_options(sender) is None or kwargs.get("raw"):
        return
    SplitJob.objects.using(kwargs.get("using")).for_object(instance).delete()


def connect() -> None:
    """Connect the receivers (idempotent: a second call changes nothing)."""
    pre_save.connect(_remember_old_name, dispatch_uid="aistemsplitter:autosplit:pre")
    post_save.connect(_split_if_changed, dispatch_uid="aistemsplitter:autosplit:post")
    post_delete.connect(_delete_jobs, dispatch_uid="aistemsplitter:autosplit:delete")
