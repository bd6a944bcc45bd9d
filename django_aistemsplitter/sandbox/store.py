"""In-memory state of the sandbox account: uploads, splits, idempotency keys, credits.

One lock guards everything; every method is short, so contention never matters at
sandbox scale. Records are plain dataclasses that only this module mutates, which
keeps the "status only moves forward" rule in one place.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from django_aistemsplitter import contract
from django_aistemsplitter.sandbox.errors import ApiError


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


@dataclass
class Upload:
    id: str
    filename: str
    content_type: str
    declared_length: int | None
    path: Path
    size: int | None = None

    @property
    def storage_key(self) -> str:
        return f"uploads/{self.id}/{self.path.name}"


@dataclass
class Split:
    id: str
    seq: int
    stem_model: str
    output_format: str
    filename: str
    duration: float
    credits_used: int
    source: Path
    metadata: dict[str, Any]
    webhook_url: str | None
    created_at: datetime
    updated_at: datetime
    status: str = contract.QUEUED
    progress: float = 0.0
    stems: dict[str, Path] = field(default_factory=dict)
    error: dict[str, str] | None = None


@dataclass
class _IdempotencyEntry:
    fingerprint: str
    split_id: str
    stored_at: float


class IdempotencySlot:
    """What :meth:`Store.idempotency_slot` yields: a previous split, or room to record one."""

    def __init__(self, store: Store, key: str, entry: _IdempotencyEntry | None) -> None:
        self._store = store
        self._key = key
        self.entry = entry

    def record(self, fingerprint: str, split_id: str) -> None:
        self._store._remember(self._key, _IdempotencyEntry(fingerprint, split_id, time.time()))


class Stats:
    """Counters ``/_sandbox/stats`` reports; tests assert on them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.webhooks: Counter[str] = Counter(
            {"attempted": 0, "delivered": 0, "failed": 0, "dropped": 0, "exhausted": 0}
        )
        #: File bodies (stems, uploaded audio): started, and how each one ended;
        #: ``in_flight`` is the number being streamed right now.
        self.downloads: Counter[str] = Counter(
            {"started": 0, "completed": 0, "truncated": 0, "broken": 0, "in_flight": 0}
        )

    def count_request(self, route: str) -> None:
        with self._lock:
            self.requests[route] += 1

    def count_webhook(self, outcome: str) -> None:
        with self._lock:
            self.webhooks[outcome] += 1

    def download_started(self) -> None:
        with self._lock:
            self.downloads["started"] += 1
            self.downloads["in_flight"] += 1

    def download_ended(self, outcome: str) -> None:
        """``outcome``: completed, truncated (injected) or broken (the client hung up)."""
        with self._lock:
            self.downloads[outcome] += 1
            self.downloads["in_flight"] -= 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                "requests": dict(self.requests),
                "webhooks": dict(self.webhooks),
                "downloads": dict(self.downloads),
            }


class Store:
    """The account's state."""

    def __init__(self, credits: int) -> None:
        self._lock = threading.RLock()
        self._uploads: dict[str, Upload] = {}
        self._splits: dict[str, Split] = {}
        self._idempotency: dict[str, _IdempotencyEntry] = {}
        self._key_locks: dict[str, threading.Lock] = {}
        self._seq = 0
        self.balance = credits

    # --- uploads -------------------------------------------------------------
    def add_upload(self, upload: Upload) -> None:
        with self._lock:
            self._uploads[upload.id] = upload

    def get_upload(self, upload_id: str) -> Upload:
        with self._lock:
            upload = self._uploads.get(upload_id)
        if upload is None:
            raise ApiError(404, f"no upload {upload_id!r}")
        return upload

    def find_upload_by_key(self, storage_key: str) -> Upload | None:
        with self._lock:
            return next((u for u in self._uploads.values() if u.storage_key == storage_key), None)

    def mark_uploaded(self, upload_id: str, size: int) -> None:
        with self._lock:
            self._uploads[upload_id].size = size

    # --- credits -------------------------------------------------------------
    def reserve_credits(self, seconds: int) -> None:
        with self._lock:
            if seconds > self.balance:
                raise ApiError(
                    402,
                    f"this audio needs {seconds} credits (seconds); the balance is {self.balance}",
                    details={"required": seconds, "balance": self.balance},
                )
            self.balance -= seconds

    def refund_credits(self, seconds: int) -> None:
        with self._lock:
            self.balance += seconds

    # --- splits --------------------------------------------------------------
    def next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def add_split(self, split: Split) -> None:
        with self._lock:
            self._splits[split.id] = split

    def get_split(self, split_id: str) -> Split:
        """A copy, so callers can read it without the lock while workers update it."""
        with self._lock:
            split = self._splits.get(split_id)
            if split is None:
                raise ApiError(404, f"no split {split_id!r}")
            return replace(split, stems=dict(split.stems), metadata=dict(split.metadata))

    def list_splits(self, status: str | None, before_seq: int | None, limit: int) -> list[Split]:
        """Newest first; ``before_seq`` continues after the previous page's last item."""
        with self._lock:
            ordered = sorted(self._splits.values(), key=lambda s: s.seq, reverse=True)
            chosen = [
                s
                for s in ordered
                if (status is None or s.status == status)
                and (before_seq is None or s.seq < before_seq)
            ]
            return [self.get_split(s.id) for s in chosen[:limit]]

    def split_count(self) -> int:
        with self._lock:
            return len(self._splits)

    def update_split(self, split_id: str, **changes: Any) -> Split:
        """Apply ``changes``; a status may only move forward and progress never drops."""
        with self._lock:
            split = self._splits[split_id]
            status = changes.get("status", split.status)
            if contract.STATUS_RANK[status] < contract.STATUS_RANK[split.status] or (
                split.status in contract.TERMINAL_STATUSES and status != split.status
            ):
                raise ValueError(f"split {split_id}: {split.status} -> {status} goes backwards")
            if "progress" in changes:
                changes["progress"] = max(split.progress, min(1.0, float(changes["progress"])))
            for name, value in changes.items():
                setattr(split, name, value)
            split.updated_at = utcnow()
            return self.get_split(split_id)

    # --- idempotency ---------------------------------------------------------
    @contextmanager
    def idempotency_slot(self, key: str) -> Iterator[IdempotencySlot]:
        """Serialise requests with the same key, so a key maps to at most one split."""
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                entry = self._idempotency.get(key)
                if entry and time.time() - entry.stored_at > contract.IDEMPOTENCY_TTL_SECONDS:
                    entry = None
                    del self._idempotency[key]
            yield IdempotencySlot(self, key, entry)

    def _remember(self, key: str, entry: _IdempotencyEntry) -> None:
        with self._lock:
            self._idempotency[key] = entry
