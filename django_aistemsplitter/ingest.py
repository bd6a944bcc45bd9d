"""Bring finished stems into storage: streamed, validated, all-or-nothing.

A stem URL comes from the network, so everything about it is checked before a
byte is trusted: its name (it becomes part of a storage key), its host (only
``ALLOWED_DOWNLOAD_HOSTS``), its scheme (https unless ``ALLOW_HTTP_DOWNLOADS``),
its size (``MAX_STEM_BYTES``, checked on the header and while streaming), its
completeness (a short read is retried), its duration (``DOWNLOAD_TIMEOUT``) and
its content (it must decode as audio). The rules are the API client's download
policy (:mod:`django_aistemsplitter.client.downloads`); this module maps the
settings onto it.

Downloads go to a temporary directory first. Only when every stem is complete
are they written to storage, with no lock held (an upload of a big stem takes
seconds, and nothing else that writes the job should wait for it): a
``FileSystemStorage`` on the same file system moves the downloaded file into
place instead of copying it, and a storage that overwrites (S3's default) is not
asked whether a key exists before each write. Then the
:class:`Stem` rows plus the job's move to ``succeeded`` happen in one short
transaction, under a row lock on the job that covers the rows only. If anything
fails, or the job turns out to be finished or cancelled once the lock is taken,
the files written are deleted again, so a crash or a retry never leaves a
partial stem, an orphan file or a duplicate row.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.core.files import File
from django.core.files.storage import Storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from django_aistemsplitter import contract, signals
from django_aistemsplitter.client import DownloadPolicy, PolicyNames, download_file
from django_aistemsplitter.client._transport import BulkReadTransport
from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.engines.audio import AudioInfo, probe
from django_aistemsplitter.exceptions import (
    DownloadRefusedError,  # noqa: F401 - part of this module's API (tasks, tests)
    DownloadTimeoutError,
    IncompleteDownloadError,
    UnsafeStemNameError,
)
from django_aistemsplitter.jobs import heartbeat, heartbeat_interval
from django_aistemsplitter.models import TERMINAL, SplitJob, SplitStatus, Stem
from django_aistemsplitter.storage import get_storage, stem_upload_to
from django_aistemsplitter.workdirs import (  # noqa: F401 - part of this module's API
    STAGING_PREFIX,
    remove_dir,
    staging_dir,
    sweep_staging_dirs,
)

logger = logging.getLogger(__name__)

CHUNK = 256 * 1024
MAX_REDIRECTS = 3


@dataclass(frozen=True)
class StagedStem:
    """One complete, verified stem file on local disk, ready to store."""

    name: str
    path: Path
    ext: str
    size: int
    sha256: str
    info: AudioInfo
    #: The ingest made this file in its own staging directory, so storing it may
    #: move it away (an engine's output, ``stage_local_files``, is only copied).
    movable: bool = False


class StagedFile(File):
    """A staged stem opened for storage, which a ``FileSystemStorage`` may move into place.

    Django's ``FileSystemStorage`` moves content that exposes
    ``temporary_file_path()`` (``file_move_safe``: a rename on the same file
    system, a copy otherwise) instead of copying it chunk by chunk: for a
    100 MB set of stems, that is 100 MB not written twice. Other storages read
    it like any :class:`~django.core.files.File`.
    """

    def __init__(self, file: Any, name: str, path: Path) -> None:
        super().__init__(file, name=name)
        self._path = path

    def temporary_file_path(self) -> str:
        return str(self._path)


# --- policy ---------------------------------------------------------------------
# The rules themselves (hosts, scheme, redirects, size, completeness, deadline) are
# the API client's download policy; this section only maps the settings onto it.

#: How refusals name what to change: this app's settings.
SETTING_NAMES = PolicyNames(
    allowed_hosts="ALLOWED_DOWNLOAD_HOSTS",
    allow_http="ALLOW_HTTP_DOWNLOADS",
    max_bytes="MAX_STEM_BYTES",
    deadline="DOWNLOAD_TIMEOUT",
)


def allowed_hosts() -> list[str]:
    """``ALLOWED_DOWNLOAD_HOSTS``, or the API's host and its subdomains."""
    hosts = get_setting("ALLOWED_DOWNLOAD_HOSTS")
    if hosts is None:
        base = urlsplit(str(get_setting("BASE_URL"))).hostname or ""
        return [base, f"*.{base}"] if base else []
    if isinstance(hosts, str):
        hosts = [hosts]
    return [str(h).lower() for h in hosts]


def download_policy(*, max_bytes: int | None = None) -> DownloadPolicy:
    """The stem download settings as the client's :class:`DownloadPolicy`."""
    deadline = get_setting("DOWNLOAD_TIMEOUT")
    return DownloadPolicy(
        allowed_hosts=allowed_hosts(),
        allow_http=bool(get_setting("ALLOW_HTTP_DOWNLOADS")),
        max_bytes=int(get_setting("MAX_STEM_BYTES")) if max_bytes is None else max_bytes,
        max_redirects=MAX_REDIRECTS,
        deadline=float(deadline) if deadline else None,
        names=SETTING_NAMES,
    )


def check_url(url: str) -> None:
    """Refuse a URL whose scheme or host is not allowed (before connecting)."""
    download_policy().check_url(url)


def check_stem_names(names: Iterable[str]) -> None:
    for name in names:
        if not contract.is_safe_stem_name(name):
            raise UnsafeStemNameError(f"refusing unsafe stem name {name!r}")


def _extension(url: str, default: str) -> str:
    ext = posixpath.splitext(urlsplit(url).path)[1].lower().lstrip(".")
    return ext if ext in contract.CONTENT_TYPES else default


# --- download -------------------------------------------------------------------


def download(url: str, dest: Path, *, max_bytes: int, client: httpx.Client) -> tuple[int, str]:
    """Stream ``url`` into ``dest`` under the settings' policy; returns (size, sha256).

    Raises :class:`DownloadRefusedError` (host, scheme, size, redirects: final) or
    :class:`IncompleteDownloadError` (cut, short, an error answer such as the 403
    of an expired presigned URL, or ``DOWNLOAD_TIMEOUT`` passed: worth a retry).
    """
    got = download_file(
        url,
        dest,
        policy=download_policy(max_bytes=max_bytes),
        http=client,
        timeout=float(get_setting("HTTP_TIMEOUT")),
    )
    return got.size, got.sha256


def _verified(
    name: str, path: Path, ext: str, size: int, sha256: str, *, movable: bool = False
) -> StagedStem:
    try:
        info = probe(str(path))
    except Exception as exc:
        raise IncompleteDownloadError(f"stem {name!r} is not decodable audio: {exc}") from exc
    return StagedStem(name, path, ext, size, sha256, info, movable)


def stage_remote_stems(job: SplitJob, stems: Mapping[str, str], workdir: Path) -> list[StagedStem]:
    """Download and verify every stem of ``stems`` (name -> URL) into ``workdir``.

    Names and URLs are all checked before the first download, so a hostile
    entry refuses the whole set rather than leaving half of it behind.
    """
    if not stems:
        raise IncompleteDownloadError("the split succeeded but lists no stems")
    check_stem_names(stems)
    for url in stems.values():
        check_url(url)
    max_bytes = int(get_setting("MAX_STEM_BYTES"))
    timeout = float(get_setting("HTTP_TIMEOUT"))
    attempts = max(1, int(get_setting("DOWNLOAD_ATTEMPTS")))
    staged = []
    beat = _Heartbeat(job)
    # One TLS context per process and large socket reads (client._transport).
    transport = BulkReadTransport()
    with httpx.Client(timeout=timeout, follow_redirects=False, transport=transport) as client:
        for name, url in stems.items():
            ext = _extension(url, job.output_format)
            dest = workdir / f"{name}.{ext}"
            for attempt in range(1, attempts + 1):
                try:
                    size, sha256 = download(url, dest, max_bytes=max_bytes, client=client)
                    staged.append(_verified(name, dest, ext, size, sha256, movable=True))
                    beat()
                    break
                except DownloadTimeoutError:
                    raise  # the stem's time is up: the task's own retry decides
                except (IncompleteDownloadError, httpx.TransportError) as exc:
                    dest.unlink(missing_ok=True)
                    if attempt == attempts:
                        raise
                    logger.info("stem %r of job %s: %s; trying again", name, job.pk, exc)
                    time.sleep(min(2.0, 0.25 * attempt))
    return staged


class _Heartbeat:
    """Beat (:func:`~django_aistemsplitter.jobs.heartbeat`) after a stem, when one is due.

    ``reconcile_splits`` re-queues jobs silent too long; a long download would
    otherwise look stuck and get a second ingest queued behind it: harmless (the
    second run waits while this one is alive, and the commit re-checks the job
    under its lock) but twice the traffic. A beat is one committed UPDATE (tens of
    milliseconds on a busy disk), so it is written only when the last one known
    (the job's ``heartbeat_at``: the start of the run, or this ingest's previous
    beat) is older than half of :func:`~django_aistemsplitter.jobs.heartbeat_interval`:
    four quick stems cost no beat at all after the one that started the run, and
    a slow set still beats more than once per interval. (The run's own beating
    thread, :func:`~django_aistemsplitter.jobs.beating`, keeps beating during a
    long single download.)
    """

    def __init__(self, job: SplitJob) -> None:
        self.job = job
        self.last = job.heartbeat_at

    def __call__(self) -> None:
        now = timezone.now()
        age = None if self.last is None else (now - self.last).total_seconds()
        if age is not None and 0 <= age < heartbeat_interval() / 2:
            return
        heartbeat(self.job)
        self.last = now


def stage_local_files(files: Mapping[str, Path]) -> list[StagedStem]:
    """Verify stems an in-process backend wrote (same checks, no network)."""
    check_stem_names(files)
    staged = []
    for name, path in files.items():
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
        ext = path.suffix.lower().lstrip(".") or "wav"
        staged.append(_verified(name, path, ext, path.stat().st_size, digest.hexdigest()))
    return staged


# --- commit ---------------------------------------------------------------------


def commit_stems(job: SplitJob, staged: list[StagedStem], *, replace: bool = False) -> bool:
    """Store ``staged``, then create the Stem rows and mark the job succeeded, atomically.

    The files go to storage first, outside any transaction: an upload takes as
    long as the stem is big, and a webhook, a cancel or a heartbeat for the job
    must not wait for it. Only then is the job's row locked, for the rows alone.
    If, under the lock, the job is no longer ingestible (another run stored its
    stems, it was cancelled or deleted meanwhile), the files just written are
    deleted again and nothing else changes: the answer is False. ``replace``
    re-stores the stems of an already succeeded job (re-download) in place of
    the old files.

    Runs of one job do not overlap (:func:`~django_aistemsplitter.jobs.begin_run`),
    so a file found at a stem's path that no row points to was left by a run that
    died between its upload and its commit: it is replaced.
    """
    if not _ingestible(SplitJob.objects.filter(pk=job.pk).first(), replace=replace):
        logger.info("split job %s is no longer ingestible; not storing stems", job.pk)
        return False
    storage = get_storage()
    referenced = set(Stem.objects.filter(job_id=job.pk).values_list("file", flat=True))
    written = _store(storage, job, staged, referenced)
    to_delete_after: list[str] = []
    created: list[Stem] = []
    try:
        with transaction.atomic():
            locked = SplitJob.objects.select_for_update().filter(pk=job.pk).first()
            if locked is None or not _ingestible(locked, replace=replace):
                logger.info("split job %s finished meanwhile; discarding its upload", job.pk)
                stored = False
            else:
                existing = {stem.name: stem for stem in locked.stems.all()}
                for item, saved in zip(staged, written, strict=True):
                    stem = existing.get(item.name) or Stem(job=locked, name=item.name)
                    if stem.pk and stem.file.name and stem.file.name != saved:
                        to_delete_after.append(stem.file.name)
                    stem.file.name = saved
                    stem.format = item.ext
                    stem.size = item.size
                    stem.sha256 = item.sha256
                    stem.duration_seconds = item.info.duration
                    stem.sample_rate = item.info.sample_rate
                    stem.channels = item.info.channels
                    stem.save()
                    created.append(stem)
                if not replace:
                    locked.advance(
                        SplitStatus.SUCCEEDED, progress=1.0, error_code="", error_message=""
                    )
                job.refresh_from_db()
                stored = True
    except IntegrityError:
        logger.info("split job %s: stems were stored by a concurrent run", job.pk)
        stored = False
    except BaseException:
        _discard(storage, written, referenced)
        raise
    if not stored:
        _discard(storage, written, referenced)
        return False

    def announce() -> None:
        _delete(storage, to_delete_after)
        for stem in created:
            signals.stem_saved.send(sender=SplitJob, job=job, stem=stem)
        if not replace:
            signals.split_succeeded.send(sender=SplitJob, job=job, stems=created)

    transaction.on_commit(announce)
    logger.info("split job %s: stored %d stems", job.pk, len(created))
    return True


def _ingestible(job: SplitJob | None, *, replace: bool) -> bool:
    """Whether stems may be stored for ``job``: it exists and is unfinished (or, for a
    re-download, succeeded)."""
    if job is None:
        return False
    if replace:
        return job.status == SplitStatus.SUCCEEDED
    return job.status not in TERMINAL


def _store(
    storage: Storage, job: SplitJob, staged: list[StagedStem], referenced: set[str]
) -> list[str]:
    """Write every staged stem to storage (no lock held); returns the names, in order.

    ``referenced`` holds the files the job's rows point to now. If a write fails,
    what this call wrote so far is deleted again before the error propagates.

    A stem's name in storage is per job and per stem, so a file already there
    that no row points to was left by an earlier run of this job that died after
    storing it, before its commit: it is deleted, so the stem keeps its name.
    Whether something is there is asked the way ``storage.save`` asks it,
    ``get_available_name``: a storage that overwrites (django-storages' S3 with
    ``file_overwrite``, its default) answers the name itself without a request,
    and its save replaces the leftover; one that does not (``FileSystemStorage``:
    a ``stat``) answers another name when the file exists.

    A downloaded stem (``movable``) is handed over as a :class:`StagedFile`, which
    ``FileSystemStorage`` moves into place instead of copying.
    """
    written: list[str] = []
    try:
        for item in staged:
            target = stem_upload_to(Stem(job_id=job.pk, name=item.name), f"{item.name}.{item.ext}")
            if target not in referenced and storage.get_available_name(target) != target:
                storage.delete(target)
            with open(item.path, "rb") as fh:
                name = posixpath.basename(target)
                content = StagedFile(fh, name, item.path) if item.movable else File(fh, name=name)
                written.append(storage.save(target, content))
    except BaseException:
        _discard(storage, written, referenced)
        raise
    return written


def _discard(storage: Storage, written: list[str], referenced: set[str]) -> None:
    """Delete the files of an upload that was not committed, except any a row points to.

    A storage that overwrites (S3 by default) may have written onto the very name
    a committed stem uses (a re-download, or a run that lost to another): that
    file stays. Which names rows point to is read again now; if the database
    cannot say (the error being handled may be its own), ``referenced`` (read
    before the upload) stands in.
    """
    try:
        kept = set(Stem.objects.filter(file__in=written).values_list("file", flat=True))
    except Exception:
        logger.warning("split stems: could not re-read stored names; using the earlier ones")
        kept = referenced
    _delete(storage, [name for name in written if name not in kept])


def _delete(storage: Storage, names: Iterable[str]) -> None:
    for name in names:
        try:
            storage.delete(name)
        except Exception:
            logger.exception("could not delete %s from storage", name)
