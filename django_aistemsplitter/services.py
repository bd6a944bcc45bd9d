"""The Python API of the Django side: start, retry, cancel and re-download splits.

Views, the admin, the REST API, management commands and the auto-split registry
all call these functions. Whether a request may become a job is decided by
:mod:`django_aistemsplitter.validation`, once, before anything is stored (a
corrupt upload leaves no job and no file behind): :func:`split` validates raw
input itself, while the admin form, the API and ``split_audio`` validate in their
own step and hand the answer to :func:`create_split`, so the audio is decoded
once. Work is enqueued only once the job's row is committed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import models, transaction

from django_aistemsplitter.backends import RemoteBackend, get_backend
from django_aistemsplitter.dispatch import Step, send_on_commit
from django_aistemsplitter.exceptions import AiStemSplitterError, InvalidTransitionError
from django_aistemsplitter.filestreams import open_stored
from django_aistemsplitter.models import SplitJob, SplitStatus
from django_aistemsplitter.pricing import estimate_cost, runs_in_process
from django_aistemsplitter.registry import registration_for
from django_aistemsplitter.validation import (
    FileTooLargeError,
    ValidSplitRequest,
    available_models,
    default_model,
    validate_split_request,
)

logger = logging.getLogger(__name__)

__all__ = [
    "FileTooLargeError",
    "NothingToSplitError",
    "QuerysetSplit",
    "available_models",
    "cancel",
    "create_split",
    "default_model",
    "redownload",
    "retry",
    "split",
    "split_again",
    "split_queryset",
]


def _as_file(value: Any, stack: ExitStack) -> File:
    """Wrap any supported input as a Django ``File`` positioned at its start."""
    if isinstance(value, models.fields.files.FieldFile):
        if not value:
            raise ValueError("the file field is empty")
        # Ranges, not the whole object: django-storages' S3 file would read all of
        # it into memory on the first read, for a probe that needs the header.
        reader, _size = open_stored(value)
        stack.callback(reader.close)
        return File(reader, name=value.name)
    if isinstance(value, File):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ContentFile(bytes(value), name="audio")
    if isinstance(value, (str, os.PathLike)):
        fh = stack.enter_context(open(value, "rb"))  # noqa: SIM115 - closed by the stack
        return File(fh, name=os.fspath(value))
    if hasattr(value, "read"):
        return File(value, name=getattr(value, "name", None) or "audio")
    raise TypeError(
        "split() takes an uploaded file, a File, a path, bytes, a file object or a "
        f"model instance, not {type(value).__name__}"
    )


def _registration_for(instance: models.Model) -> dict[str, Any]:
    return registration_for(type(instance)) or {}


def split(
    file_or_instance: Any = None,
    *,
    url: str | None = None,
    stem_model: str | None = None,
    output_format: str | None = None,
    owner: Any = None,
    source: models.Model | None = None,
    source_field: str = "",
    metadata: dict[str, Any] | None = None,
    backend: str | None = None,
) -> SplitJob:
    """Create a split job and enqueue its submission once the transaction commits.

    ``file_or_instance`` is an ``UploadedFile``/``File``, a path, bytes, an open
    binary file, or a model instance whose ``source_field`` (default: its
    registered field, else ``"audio"``) holds the audio; or pass ``url=`` for
    audio the (remote) service should fetch itself. ``source`` links the job to
    a model instance when the audio is given separately.

    Raises :class:`~django_aistemsplitter.validation.InvalidSplitRequest` (a
    ``ValueError``; its subclasses are also :class:`AudioDecodeError` for audio
    that is empty or not decodable, :class:`FileTooLargeError`, and
    :class:`UnsupportedModelError` for a model the backend does not serve), in
    every case before anything is stored or created.
    """
    options: dict[str, Any] = {}
    if isinstance(file_or_instance, models.Model):
        source = file_or_instance
        options = _registration_for(source)
        source_field = source_field or options.get("field") or "audio"
        file_or_instance = getattr(source, source_field)
    elif source is not None:
        options = _registration_for(source)
    if owner is None and source is not None and options.get("owner_field"):
        owner = getattr(source, options["owner_field"], None)

    with ExitStack() as stack:
        audio = None if file_or_instance is None else _as_file(file_or_instance, stack)
        validated = validate_split_request(
            audio,
            url=url,
            stem_model=stem_model or options.get("stem_model"),
            output_format=output_format or options.get("output_format"),
            backend=backend,
        )
        return create_split(
            validated, owner=owner, source=source, source_field=source_field, metadata=metadata
        )


def create_split(
    request: ValidSplitRequest,
    *,
    owner: Any = None,
    source: models.Model | None = None,
    source_field: str = "",
    metadata: dict[str, Any] | None = None,
    attach: Callable[[SplitJob], None] | None = None,
) -> SplitJob:
    """Create the job of a request that :func:`~.validation.validate_split_request` accepted.

    Nothing is checked or decoded again: the entry points that validate in their
    own step (the admin form, the API serializer, ``split_audio``) call this with
    the answer. ``request.file`` must still be open; it is stored as the job's
    audio, unless ``attach`` is given: then the audio is already where it is kept
    (a direct upload, :mod:`~django_aistemsplitter.tickets`) and ``attach(job)``
    points the unsaved job at it instead of copying it. Submission is enqueued
    once the transaction commits.
    """
    job = SplitJob(
        owner=owner if getattr(owner, "pk", None) else None,
        stem_model=request.stem_model,
        output_format=request.output_format,
        backend=request.backend,
        original_filename=request.filename,
        metadata=dict(metadata or {}),
    )
    if source is not None:
        job.content_type = ContentType.objects.get_for_model(source)
        job.object_id = str(source.pk)
        job.source_field = source_field
    if request.url is not None:
        job.source_url = request.url
        return _create(job)
    if request.file is None or request.audio is None:
        raise ValueError("a validated request holds either a URL or a probed file")
    job.duration_seconds = request.audio.duration
    # Only a service costs money; an in-process split is paid in engine time.
    job.estimated_cost = None if runs_in_process(job) else estimate_cost(request.audio.duration)
    if attach is not None:
        attach(job)
        return _create(job)
    request.file.seek(0)
    job.audio.save(request.filename, request.file, save=False)
    try:
        return _create(job)
    except BaseException:
        job.audio.delete(save=False)
        raise


def _create(job: SplitJob) -> SplitJob:
    with transaction.atomic():
        job.save()
        send_on_commit(Step.SUBMIT, job.pk)
    logger.info("split job %s created (%s, %s)", job.pk, job.backend, job.stem_model)
    return job


def retry(job: SplitJob) -> SplitJob:
    """Send a failed or cancelled job again (as a new remote split)."""
    with transaction.atomic():
        if not job.reset_for_retry():
            job.refresh_from_db(fields=["status"])
            raise InvalidTransitionError(
                f"only failed or cancelled jobs can be retried; {job.pk} is {job.status}"
            )
        send_on_commit(Step.SUBMIT, job.pk)
    return job


def cancel(job: SplitJob) -> bool:
    """Stop caring about an unfinished job; False when it already finished.

    The API has no cancel call, so a remote split may still complete (and be
    billed); its late updates are ignored because a cancelled job is terminal.
    """
    return job.advance(SplitStatus.CANCELLED)


def redownload(job: SplitJob) -> None:
    """Fetch the stems again (e.g. after they were deleted from storage).

    Remote jobs re-read the split for fresh URLs and replace the stored stems;
    jobs of in-process backends have nothing to fetch: retry them instead.
    """
    if not isinstance(get_backend(job.backend or None), RemoteBackend):
        raise ValueError("stems of an in-process backend cannot be re-downloaded; retry the job")
    job.refresh_from_db()
    if job.status == SplitStatus.SUCCEEDED:
        send_on_commit(Step.INGEST, job.pk, force=True)
    elif job.status == SplitStatus.DOWNLOADING:
        send_on_commit(Step.INGEST, job.pk)
    elif job.status in (SplitStatus.SUBMITTED, SplitStatus.PROCESSING):
        send_on_commit(Step.REFRESH, job.pk)
    else:
        raise InvalidTransitionError(f"split job {job.pk} is {job.status}: nothing to download")


class NothingToSplitError(AiStemSplitterError, ValueError):
    """The job kept neither its audio nor a source URL, so there is nothing to split again."""


def split_again(job: SplitJob, *, owner: Any) -> SplitJob:
    """Start a new job on ``job``'s audio (or URL) with its model, format, backend and source.

    The new job is separate (its own copy of the audio, its own remote split and
    cost), owned by ``owner``, and names the original in
    ``metadata["split_again_of"]``. Raises :class:`NothingToSplitError` when the
    job has no stored audio and no URL, or what :func:`split` raises.
    """
    if not job.audio and not job.source_url:
        raise NothingToSplitError(
            f"split job {job.pk} has neither stored audio nor a source URL to split again"
        )
    return split(
        job.audio if job.audio else None,
        url=None if job.audio else job.source_url,
        stem_model=job.stem_model,
        output_format=job.output_format,
        owner=owner,
        source=job.source,
        source_field=job.source_field,
        metadata={**job.metadata, "split_again_of": str(job.pk)},
        backend=job.backend or None,
    )


@dataclass
class QuerysetSplit:
    """What :func:`split_queryset` did: the jobs it created and why it skipped the others."""

    jobs: list[SplitJob] = field(default_factory=list)
    #: Primary key of each instance not split -> the reason (no audio, not splittable...).
    skipped: dict[Any, str] = field(default_factory=dict)


def split_queryset(
    queryset: models.QuerySet[Any],
    *,
    source_field: str = "",
    stem_model: str | None = None,
    output_format: str | None = None,
    owner: Any = None,
) -> QuerysetSplit:
    """Split the audio of every instance of ``queryset``, now, one job each.

    Auto-split reacts to ``save()``; ``bulk_create()`` and ``queryset.update()``
    send no signals, so the rows they write are split by calling this after them.
    ``source_field`` defaults to the model's registered field (else ``"audio"``),
    the model and format to the registration's, then the settings'. An instance
    with an empty field, or whose audio cannot be split, is skipped and said so
    in the answer; the others are split regardless. Each job is enqueued once
    the current transaction (if any) commits, as :func:`split` does.
    """
    result = QuerysetSplit()
    for instance in queryset.iterator(chunk_size=500):
        name = source_field or _registration_for(instance).get("field") or "audio"
        if not getattr(instance, name, None):
            result.skipped[instance.pk] = f"no file in {name!r}"
            continue
        try:
            with transaction.atomic():  # one instance's failure leaves the others' jobs
                job = split(
                    instance,
                    source_field=name,
                    stem_model=stem_model,
                    output_format=output_format,
                    owner=owner,
                )
        except (AiStemSplitterError, ValueError, OSError) as exc:
            result.skipped[instance.pk] = str(exc)
            continue
        result.jobs.append(job)
    return result
