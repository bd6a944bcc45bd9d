"""Typed results of the API: frozen dataclasses built from the wire's camelCase dicts.

Every class keeps the decoded ``raw`` dict, so a field the service adds later is
still reachable before this package learns its name, and ``from_api`` tolerates
missing or malformed values (they become ``None``, the original stays in ``raw``):
the thin webhook event carries a Split with only ``id`` and ``status``, and older
or newer servers may omit optional fields.

Results read both ways: as attributes (``split.stem_model``) and, as the
service's documentation writes it, as a read-only mapping under the wire names
(``split["stemModel"]``, ``event.data["stems"]``, ``event.data["error"]["code"]``,
``"stems" in split``, ``split.get("progress")``). The mapping gives the typed
values (a ``datetime`` for ``createdAt``); keys the package does not know yet
come from ``raw``.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Protocol

from django_aistemsplitter import contract

__all__ = [
    "Credits",
    "Split",
    "SplitError",
    "SplitPage",
    "Upload",
    "UploadedInput",
    "WebhookEvent",
    "WireMapping",
]


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _str(value: Any) -> str | None:
    """A wire string, or ``None`` for anything else (a number where text belongs)."""
    return value if isinstance(value, str) else None


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


_ISO_DATETIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}(?::\d{2})?)"
    r"(?:[.,](?P<fraction>\d{1,9}))?\s*(?P<zone>Z|z|[+-]\d{2}(?::?\d{2})?)?"
)


def parse_iso_datetime(value: str) -> datetime | None:
    """ISO 8601 text -> datetime in UTC (naive input is taken as UTC); junk -> None.

    Python 3.10's ``datetime.fromisoformat`` rejects a trailing ``Z`` and fractions
    of a second that are not 3 or 6 digits, both of which 3.11+ accepts; the text is
    normalised first so every supported Python reads the same timestamps.
    """
    match = _ISO_DATETIME.fullmatch(value.strip())
    if match is None:
        return None
    fraction = (match["fraction"] or "").ljust(6, "0")[:6]
    zone = match["zone"] or "+00:00"
    if zone in ("Z", "z"):
        zone = "+00:00"
    elif len(zone) == 3:
        zone += ":00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    text = f"{match['date']}T{match['time']}" + (f".{fraction}" if match["fraction"] else "")
    try:
        parsed = datetime.fromisoformat(text + zone)
    except ValueError:  # well formed but impossible, e.g. month 13
        return None
    return parsed.astimezone(timezone.utc)


def parse_timestamp(value: Any) -> datetime | None:
    """ISO 8601 (with ``Z``) or unix seconds -> aware UTC datetime; junk -> None.

    A malformed timestamp must not make a whole Split unreadable, so it is dropped
    rather than raised (a number far outside the calendar included); the original
    stays in ``raw``.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=value)
        except (OverflowError, ValueError):
            return None
    if isinstance(value, str):
        return parse_iso_datetime(value)
    return None


class WireMapping(Mapping[str, Any]):
    """Read-only mapping access to a result's fields under their wire names.

    Subclasses list ``_wire`` (wire name -> attribute). Lookups of other keys fall
    back to ``raw``, so a field the service adds later is readable the same way.
    Equality and hashing stay the dataclass's own (field by field): the decorator
    defines them on each subclass, over Mapping's.
    """

    _wire: ClassVar[Mapping[str, str]] = {}
    raw: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        attribute = self._wire.get(key)
        if attribute is not None:
            return getattr(self, attribute)
        return self.raw[key]

    def __iter__(self) -> Iterator[str]:
        yield from self._wire
        for key in self.raw:
            if key not in self._wire:
                yield key

    def __len__(self) -> int:
        return len(self._wire) + sum(1 for key in self.raw if key not in self._wire)

    def __contains__(self, key: object) -> bool:
        return key in self._wire or key in self.raw


@dataclass(frozen=True)
class SplitError(WireMapping):
    """Why a split failed, as the service put it (``error["code"]`` reads it too)."""

    _wire: ClassVar[Mapping[str, str]] = {"code": "code", "message": "message"}

    code: str | None
    message: str
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> SplitError:
        return cls(
            code=_str(data.get("code")),
            message=_str(data.get("message")) or "split failed",
            raw=dict(data),
        )


@dataclass(frozen=True)
class Split(WireMapping):
    """One remote separation job.

    ``stems`` maps stem name -> presigned, expiring URL and is only filled once the
    split ``succeeded``; download promptly or fetch the split again for fresh URLs.
    """

    _wire: ClassVar[Mapping[str, str]] = {
        "id": "id",
        "status": "status",
        "stemModel": "stem_model",
        "filename": "filename",
        "durationSeconds": "duration_seconds",
        "creditsUsed": "credits_used",
        "progress": "progress",
        "createdAt": "created_at",
        "updatedAt": "updated_at",
        "stems": "stems",
        "error": "error",
        "metadata": "metadata",
        "outputFormat": "output_format",
    }

    id: str
    status: str
    stem_model: str | None = None
    filename: str | None = None
    duration_seconds: float | None = None
    credits_used: float | None = None
    progress: float | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    stems: Mapping[str, str] = field(default_factory=dict, hash=False)
    error: SplitError | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)
    output_format: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Split:
        error = data.get("error")
        return cls(
            id=str(data.get("id") or ""),
            status=str(data.get("status") or ""),
            stem_model=_str(data.get("stemModel")),
            filename=_str(data.get("filename")),
            duration_seconds=_float(data.get("durationSeconds")),
            credits_used=_float(data.get("creditsUsed")),
            progress=_float(data.get("progress")),
            created_at=parse_timestamp(data.get("createdAt")),
            updated_at=parse_timestamp(data.get("updatedAt")),
            stems={str(k): str(v) for k, v in _dict(data.get("stems")).items()},
            error=SplitError.from_api(error) if isinstance(error, Mapping) else None,
            metadata=_dict(data.get("metadata")),
            output_format=_str(data.get("outputFormat")),
            raw=dict(data),
        )

    @property
    def is_terminal(self) -> bool:
        return self.status in contract.TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == contract.SUCCEEDED

    @property
    def failed(self) -> bool:
        return self.status == contract.FAILED


class Pager(Protocol):
    """What a page needs from its client to walk on; sync or async by client."""

    def iter_from(self, page: SplitPage) -> Iterator[Split] | AsyncIterator[Split]: ...


@dataclass(frozen=True)
class SplitPage:
    """One page of ``GET /audio/splits``, newest first.

    ``items`` is just this page. ``iter_all()`` (sync client) or ``async for``
    (async client) yields these items and then every item of the following pages,
    fetching them lazily, so a caller never handles cursors by hand.
    """

    items: tuple[Split, ...]
    next_cursor: str | None
    limit: int | None = None
    status: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)
    pager: Pager | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_api(
        cls,
        data: Mapping[str, Any],
        *,
        limit: int | None = None,
        status: str | None = None,
        pager: Pager | None = None,
    ) -> SplitPage:
        items = data.get("items") or []
        return cls(
            items=tuple(Split.from_api(item) for item in items if isinstance(item, Mapping)),
            next_cursor=_str(data.get("nextCursor")) or None,
            limit=limit,
            status=status,
            raw=dict(data),
            pager=pager,
        )

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None

    def _walk(self) -> Iterator[Split] | AsyncIterator[Split]:
        if self.pager is None:
            raise TypeError("this page was not fetched by a client; iterate .items instead")
        return self.pager.iter_from(self)

    def iter_all(self) -> Iterator[Split]:
        walker = self._walk()
        if not isinstance(walker, Iterator):
            raise TypeError("this page came from an async client: use `async for split in page`")
        return walker

    def __iter__(self) -> Iterator[Split]:
        return self.iter_all()

    def __aiter__(self) -> AsyncIterator[Split]:
        walker = self._walk()
        if not isinstance(walker, AsyncIterator):
            raise TypeError("this page came from a sync client: use `for split in page.iter_all()`")
        return walker

    # Not a Mapping (iterating a page yields splits), but its wire keys read the same.
    _wire: ClassVar[Mapping[str, str]] = {"items": "items", "nextCursor": "next_cursor"}

    def __getitem__(self, key: str) -> Any:
        """``page["items"]``, ``page["nextCursor"]``; other keys from ``raw``."""
        attribute = self._wire.get(key)
        return getattr(self, attribute) if attribute is not None else self.raw[key]

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


@dataclass(frozen=True)
class Upload(WireMapping):
    """A presigned upload slot: PUT the bytes to ``upload_url`` with ``upload_headers``."""

    _wire: ClassVar[Mapping[str, str]] = {
        "uploadId": "upload_id",
        "uploadUrl": "upload_url",
        "uploadMethod": "upload_method",
        "uploadHeaders": "upload_headers",
        "expiresAt": "expires_at",
        "audioUrl": "audio_url",
    }

    upload_id: str
    upload_url: str
    upload_method: str = "PUT"
    upload_headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    expires_at: datetime | None = None
    audio_url: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Upload:
        return cls(
            upload_id=str(data.get("uploadId") or ""),
            upload_url=str(data.get("uploadUrl") or ""),
            upload_method=str(data.get("uploadMethod") or "PUT").upper(),
            upload_headers={str(k): str(v) for k, v in _dict(data.get("uploadHeaders")).items()},
            expires_at=parse_timestamp(data.get("expiresAt")),
            audio_url=_str(data.get("audioUrl")),
            raw=dict(data),
        )

    def to_input(self) -> dict[str, Any]:
        """The ``input`` of a split reading this upload (valid once the bytes are sent)."""
        return {"type": "uploaded_file", "uploadId": self.upload_id}


@dataclass(frozen=True)
class UploadedInput(WireMapping):
    """Audio already uploaded; pass it as ``input=`` to ``create_split``.

    ``url``/``key`` are filled when the upload host answered with them (the
    published SDK's flow); they are informative, ``upload_id`` is what counts.
    """

    _wire: ClassVar[Mapping[str, str]] = {
        "uploadId": "upload_id",
        "filename": "filename",
        "contentLength": "content_length",
        "url": "url",
        "key": "key",
    }

    upload_id: str
    filename: str | None = None
    content_length: int | None = None
    url: str | None = None
    key: str | None = None
    upload: Upload | None = field(default=None, compare=False, repr=False)
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)

    def to_input(self) -> dict[str, Any]:
        return {"type": "uploaded_file", "uploadId": self.upload_id}


@dataclass(frozen=True)
class Credits(WireMapping):
    """The account's prepaid balance; ``unit`` is ``"seconds"`` of audio."""

    _wire: ClassVar[Mapping[str, str]] = {"balance": "balance", "unit": "unit"}

    balance: int
    unit: str
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Credits:
        balance = _float(data.get("balance"))
        return cls(
            balance=int(balance or 0), unit=_str(data.get("unit")) or "seconds", raw=dict(data)
        )


def derived_event_id(split_id: str, status: str) -> str:
    """A stable event id for the thin shape, which carries none.

    Deliveries are at-least-once, so receivers deduplicate on the event id; for
    thin events the contract says to deduplicate on (split id, status), and
    deriving the id from exactly that keeps one deduplication rule downstream.
    """
    digest = hashlib.sha256(f"{split_id}\x00{status}".encode()).hexdigest()[:24]
    return f"evt_derived_{digest}"


@dataclass(frozen=True)
class WebhookEvent(WireMapping):
    """A verified webhook delivery, in either of the contract's two shapes.

    ``is_thin`` is the API page's ``{"event": ..., "data": {"id", "status"}}``
    form: ``data`` then holds only the id and status and ``needs_fetch`` is true,
    telling the receiver to ``GET`` the split before using stems or errors.
    """

    _wire: ClassVar[Mapping[str, str]] = {
        "id": "id",
        "type": "type",
        "created": "created",
        "data": "data",
    }

    id: str
    type: str
    created: int | None
    data: Split
    is_thin: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)

    @classmethod
    def from_api(cls, payload: Mapping[str, Any], *, signed_at: int | None = None) -> WebhookEvent:
        data = payload.get("data")
        split = Split.from_api(data if isinstance(data, Mapping) else {})
        thin = "event" in payload and "type" not in payload
        event_id = _str(payload.get("id"))
        created = _float(payload.get("created"))
        return cls(
            id=event_id or derived_event_id(split.id, split.status),
            type=_str(payload.get("type")) or _str(payload.get("event")) or "",
            created=int(created) if created is not None else signed_at,
            data=split,
            is_thin=thin,
            raw=dict(payload),
        )

    @property
    def split_id(self) -> str:
        return self.data.id

    @property
    def status(self) -> str:
        return self.data.status

    @property
    def needs_fetch(self) -> bool:
        """True when the event lacks what the receiver needs (stems of a success)."""
        return self.is_thin or (self.data.succeeded and not self.data.stems)
