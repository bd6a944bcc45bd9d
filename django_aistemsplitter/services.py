"""The Python API of the Django side: start, retry, cancel and re-download splits.

Views, the admin, the REST API, management commands and the auto-split registry
all call these functions, so every entry point validates the same way: the
audio is probed *before* anything is created (a corrupt upload raises
:class:`AudioDecodeError` and leaves no job and no file behind), the model is
checked against the backend, and work is enqueued only once the job's row is
committed.
"""

from __future__ import annotations

import logging
import os
import posixpath
from contextlib import ExitStack
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.validators import URLValidator
from django.db import models, transaction

from django_aistemsplitter import contract
from django_aistemsplitter.backends import BaseBackend, RemoteBackend, get_backend
from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.engines.audio import probe
from django_aistemsplitter.exceptions import AiStemSplitterError, InvalidTransitionError
from django_aistemsplitter.jobs import estimate_cost
from django_aistemsplitter.models import SplitJob, SplitStatus

logger = logging.getLogger(__name__)

__all__ = [
    "FileTooLargeError",
    "available_models",
    "cancel",
    "default_model",
    "redownload",
    "retry",
    "split",
]


class FileTooLargeError(AiStemSplitterError, ValueError):
    """The audio is over ``MAX_UPLOAD_BYTES``."""


def available_models(backend: str | None = None) -> list[str]:
    """Models the backend (default: the configured one) accepts, default first."""
    return get_backend(backend).available_models()


def default_model(backend: str | None = None) -> str:
    """``DEFAULT_MODEL``, or the backend's own default when that setting is None."""
    return str(get_setting("DEFAULT_MODEL") or get_backend(backend).default_model)


def _file_size(file: File) -> int | None:
    try:
        return int(file.size)
    except (AttributeError, TypeError, ValueError, OSError):
        return None


def _as_file(value: Any, stack: ExitStack) -> File:
    """Wrap any supported input as a Django ``File`` positioned at its start."""
    if isinstance(value, models.fields.files.FieldFile):
        if not value:
            raise ValueError("the file field is empty")
        value.open("rb")
        stack.callback(value.close)
        return File(value.file, name=value.name)
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
    from django_aistemsplitter.registry import registration_for

    return registration_for(type(instance)) or {}


def _check_output_format(output_format: str) -> str:
    if output_format not in contract.OUTPUT_FORMATS:
        raise ValueError(
            f"Unknown output format {output_format!r}; use one of "
            f"{', '.join(contract.OUTPUT_FORMATS)}."
        )
    return output_format


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

    Raises :class:`AudioDecodeError` (not audio), :class:`FileTooLargeError`,
    :class:`UnsupportedModelError` (model not served by the backend) or
    ``ValueError``, in every case before anything is stored or created.
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
    if (file_or_instance is None) == (url is None):
        raise ValueError("split() needs exactly one of a file (or instance) and url=")

    backend_name = backend or str(get_setting("BACKEND"))
    engine: BaseBackend = get_backend(backend_name)
    model = engine.check_model(
        stem_model or options.get("stem_model") or default_model(backend_name)
    )
    fmt = _check_output_format(
        output_format or options.get("output_format") or str(get_setting("OUTPUT_FORMAT"))
    )
    job = SplitJob(
        owner=owner if getattr(owner, "pk", None) else None,
        stem_model=model,
        output_format=fmt,
        backend=backend_name,
        metadata=dict(metadata or {}),
    )
    if source is not None:
        job.content_type = ContentType.objects.get_for_model(source)
        job.object_id = str(source.pk)
        job.source_field = source_field

    if url is not None:
        if not engine.accepts_urls:
            raise ValueError(
                f"The {engine.name!r} backend separates stored audio; pass a file, "
                "or use a remote backend for URLs."
            )
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError as exc:
            raise ValueError(f"not an http(s) URL: {url!r}") from exc
        job.source_url = url
        job.original_filename = posixpath.basename(url.split("?", 1)[0])[:255]
        return _create(job)

    with ExitStack() as stack:
        file = _as_file(file_or_instance, stack)
        size = _file_size(file)
        limit = int(get_setting("MAX_UPLOAD_BYTES"))
        if size is not None and size > limit:
            raise FileTooLargeError(f"The audio is {size} bytes; MAX_UPLOAD_BYTES allows {limit}.")
        info = probe(file)  # AudioDecodeError before anything is stored
        filename = posixpath.basename(str(file.name or "audio").replace("\\", "/")) or "audio"
        job.original_filename = filename[:255]
        job.duration_seconds = info.duration
        job.estimated_cost = estimate_cost(info.duration)
        file.seek(0)
        job.audio.save(filename, file, save=False)
    try:
        return _create(job)
    except BaseException:
        job.audio.delete(save=False)
        raise


def _create(job: SplitJob) -> SplitJob:
    from django_aistemsplitter.tasks import enqueue_on_commit, submit_split

    with transaction.atomic():
        job.save()
        enqueue_on_commit(submit_split, str(job.pk))
    logger.info("split job %s created (%s, %s)", job.pk, job.backend, job.stem_model)
    return job


def retry(job: SplitJob) -> SplitJob:
    """Send a failed or cancelled job again (as a new remote split)."""
    from django_aistemsplitter.tasks import enqueue_on_commit, submit_split

    with transaction.atomic():
        if not job.reset_for_retry():
            job.refresh_from_db(fields=["status"])
            raise InvalidTransitionError(
                f"only failed or cancelled jobs can be retried; {job.pk} is {job.status}"
            )
        enqueue_on_commit(submit_split, str(job.pk))
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
    from django_aistemsplitter.tasks import enqueue_on_commit, ingest_split, refresh_split

    if not isinstance(get_backend(job.backend or None), RemoteBackend):
        raise ValueError("stems of an in-process backend cannot be re-downloaded; retry the job")
    job.refresh_from_db()
    if job.status == SplitStatus.SUCCEEDED:
        enqueue_on_commit(ingest_split, str(job.pk), force=True)
    elif job.status == SplitStatus.DOWNLOADING:
        enqueue_on_commit(ingest_split, str(job.pk))
    elif job.status in (SplitStatus.SUBMITTED, SplitStatus.PROCESSING):
        enqueue_on_commit(refresh_split, str(job.pk))
    else:
        raise InvalidTransitionError(f"split job {job.pk} is {job.status}: nothing to download")
