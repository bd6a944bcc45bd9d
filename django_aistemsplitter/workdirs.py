"""Private temporary directories for work that a killed worker must not leak.

Ingests download stems and the local backend separates audio into temp dirs,
removed when the work ends. A worker that is killed (SIGKILL, OOM, power cut)
never gets to remove its dir, so every later :func:`staging_dir` call first sweeps
the dirs whose owner is gone. Ownership is an flock on a file inside the dir, held
for as long as the work runs: the kernel drops it when the owning process dies
however it dies, so a lock we can take means a dead owner, and live work (in any
process or thread) is never touched. A dir only gets its sweepable name once
locked (an atomic rename). Without fcntl (not POSIX) there is no sweeping.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

STAGING_PREFIX = "aiss-work-"
_NEW_PREFIX = ".aiss-new-"
_LOCK_FILE = ".owner.lock"
_held_locks: dict[str, int] = {}


def _try_lock(path: Path, *, create: bool = False) -> int | None:
    """An open fd holding an exclusive flock on ``path``, or None if it is held."""
    fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def sweep_staging_dirs(root: Path | None = None) -> int:
    """Remove staging dirs whose owning process died; returns how many."""
    if fcntl is None:  # pragma: no cover - not POSIX: no sweeping
        return 0
    removed = 0
    for path in Path(root or tempfile.gettempdir()).glob(STAGING_PREFIX + "*"):
        try:
            fd = _try_lock(path / _LOCK_FILE)
        except OSError:  # gone meanwhile, not ours, or made without a lock: leave it
            continue
        if fd is None:
            continue  # a live ingest holds it
        try:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
        finally:
            os.close(fd)
    if removed:
        logger.info("removed %d staging dir(s) left by killed workers", removed)
    return removed


def staging_dir() -> Path:
    """A new private temp dir for one piece of work; give it back with :func:`remove_dir`."""
    sweep_staging_dirs()
    if fcntl is None:  # pragma: no cover
        return Path(tempfile.mkdtemp(prefix=STAGING_PREFIX))
    building = Path(tempfile.mkdtemp(prefix=_NEW_PREFIX))
    fd = _try_lock(building / _LOCK_FILE, create=True)
    assert fd is not None  # nobody else knows the dir yet
    path = building.with_name(STAGING_PREFIX + building.name[len(_NEW_PREFIX) :])
    building.rename(path)
    _held_locks[str(path)] = fd
    return path


def remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    fd = _held_locks.pop(str(path), None)
    if fd is not None:
        os.close(fd)
