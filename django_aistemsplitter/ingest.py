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
are they written to storage, and the :class:`Stem` rows plus the job's move to
``succeeded`` happen in the same transaction, under a row lock on the job. If
anything fails, the files written so far are deleted again, so a crash or a
retry never leaves a partial stem or a duplicate row.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from django.core.files import File
from django.core.files.storage import Storage
from django.db import IntegrityError, transaction

from django_aistemsplitter import contract, signals
from django_aistemsplitter.client import DownloadPolicy, PolicyNames, download_file
from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.engines.audio import AudioInfo, probe
from django_aistemsplitter.exceptions import (
    DownloadRefusedError,  # noqa: F401 - part of this module's API (tasks, tests)
    DownloadTimeoutError,
    IncompleteDownloadError,
    UnsafeStemNameError,
)
from django_aistemsplitter.jobs import heartbeat
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


def _verified(name: str, path: Path, ext: str, size: int, sha256: str) -> StagedStem:
    try:
        info = probe(str(path))
    except Exception as exc:
        raise IncompleteDownloadError(f"stem {name!r} is not decodable audio: {exc}") from exc
    return StagedStem(name, path, ext, size, sha256, info)


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
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for name, url in stems.items():
            ext = _extension(url, job.output_format)
            dest = workdir / f"{name}.{ext}"
            for attempt in range(1, attempts + 1):
                try:
                    size, sha256 = download(url, dest, max_bytes=max_bytes, client=client)
                    staged.append(_verified(name, dest, ext, size, sha256))
                    _heartbeat(job)
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


def _heartbeat(job: SplitJob) -> None:
    """Beat (:func:`~django_aistemsplitter.jobs.heartbeat`) after each stored stem.

    ``reconcile_splits`` re-queues jobs silent too long; a long download would
    otherwise look stuck and get a second ingest queued behind it: harmless (the
    commit is locked) but twice the traffic.
    """
    heartbeat(job)


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
    """Store ``staged`` and create the Stem rows + mark the job succeeded, atomically.

    Returns False (storing nothing) when another run already finished the job or
    it was cancelled meanwhile. ``replace`` re-stores the stems of an already
    succeeded job (re-download) in place of the old files.
    """
    storage = get_storage()
    written: list[str] = []
    referenced: set[str] = set()
    to_delete_after: list[str] = []
    created: list[Stem] = []
    try:
        with transaction.atomic():
            locked = SplitJob.objects.select_for_update().get(pk=job.pk)
            if replace:
                if locked.status != SplitStatus.SUCCEEDED:
                    return False
            elif locked.status in TERMINAL:
                logger.info("split job %s is already %s; not storing stems", job.pk, locked.status)
                return False
            existing = {stem.name: stem for stem in locked.stems.all()}
            referenced = {stem.file.name for stem in existing.values()}
            for item in staged:
                stem = existing.get(item.name) or Stem(job=locked, name=item.name)
                target = stem_upload_to(stem, f"{item.name}.{item.ext}")
                if target not in referenced and storage.exists(target):
                    # Left behind by a run that crashed after storing, before commit.
                    storage.delete(target)
                with open(item.path, "rb") as fh:
                    saved = storage.save(target, File(fh, name=posixpath.basename(target)))
                written.append(saved)
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
                locked.advance(SplitStatus.SUCCEEDED, progress=1.0, error_code="", error_message="")
            job.refresh_from_db()
    except IntegrityError:
        logger.info("split job %s: stems were stored by a concurrent run", job.pk)
        _delete(storage, [name for name in written if name not in referenced])
        return False
    except BaseException:
        _delete(storage, [name for name in written if name not in referenced])
        raise

    def announce() -> None:
        _delete(storage, to_delete_after)
        for stem in created:
            signals.stem_saved.send(sender=SplitJob, job=job, stem=stem)
        if not replace:
            signals.split_succeeded.send(sender=SplitJob, job=job, stems=created)

    transaction.on_commit(announce)
    logger.info("split job %s: stored %d stems", job.pk, len(created))
    return True


def _delete(storage: Storage, names: Iterable[str]) -> None:
    for name in names:
        try:
            storage.delete(name)
        except Exception:
            logger.exception("could not delete %s from storage", name)
