"""Parsing the wire's dicts into the typed results."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone

import pytest

from django_aistemsplitter.client import (
    Credits,
    Split,
    SplitPage,
    Upload,
    UploadedInput,
    WebhookEvent,
)

FULL = {
    "id": "split_1",
    "status": "failed",
    "stemModel": "htdemucs_6s",
    "filename": "song.wav",
    "durationSeconds": 12.5,
    "creditsUsed": 13,
    "progress": 0.4,
    "createdAt": "2025-01-02T03:04:05Z",
    "updatedAt": "2025-01-02T03:04:06.5+00:00",
    "stems": {},
    "error": {"code": "SEPARATION_FAILED", "message": "engine died"},
    "metadata": {"track": "42"},
    "outputFormat": "flac",
    "somethingNew": True,
}


def test_split_from_api() -> None:
    split = Split.from_api(FULL)
    assert split.id == "split_1" and split.failed and split.is_terminal and not split.succeeded
    assert split.stem_model == "htdemucs_6s"
    assert split.duration_seconds == 12.5 and split.credits_used == 13.0
    assert split.created_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert split.updated_at is not None and split.updated_at.microsecond == 500000
    assert split.error is not None and split.error.code == "SEPARATION_FAILED"
    assert split.metadata == {"track": "42"} and split.output_format == "flac"
    assert split.raw["somethingNew"] is True
    assert "raw" not in repr(split)
    assert hash(split) == hash(Split.from_api(FULL))  # dict fields stay out of the hash
    with pytest.raises(AttributeError):
        split.status = "queued"  # type: ignore[misc]


def test_split_tolerates_missing_and_malformed_fields() -> None:
    split = Split.from_api(
        {"id": "s", "status": "queued", "createdAt": "yesterday", "progress": "x"}
    )
    assert split.created_at is None and split.progress is None and split.stems == {}
    assert not split.is_terminal
    assert Split.from_api({"createdAt": 0}).created_at == datetime(1970, 1, 1, tzinfo=timezone.utc)


def test_page_upload_credits() -> None:
    page = SplitPage.from_api({"items": [FULL, "junk"], "nextCursor": "c2"}, limit=5)
    assert [s.id for s in page.items] == ["split_1"]
    assert page.next_cursor == "c2" and page.has_more and page.limit == 5
    last = SplitPage.from_api({"items": [], "nextCursor": None})
    assert not last.has_more
    with pytest.raises(TypeError, match="not fetched by a client"):
        last.iter_all()

    upload = Upload.from_api(
        {
            "uploadId": "upl_1",
            "uploadUrl": "http://h/u",
            "uploadMethod": "put",
            "uploadHeaders": {"X-A": "1"},
            "expiresAt": "2025-01-01T00:00:00Z",
            "audioUrl": "http://h/a",
        }
    )
    assert upload.upload_method == "PUT" and upload.upload_headers == {"X-A": "1"}
    assert upload.to_input() == {"type": "uploaded_file", "uploadId": "upl_1"}
    assert UploadedInput("upl_2").to_input() == {"type": "uploaded_file", "uploadId": "upl_2"}

    credits = Credits.from_api({"balance": 3600, "unit": "seconds"})
    assert credits.balance == 3600 and credits.unit == "seconds"


# --- mapping access under the wire names, as the service's documentation writes it -------


def test_results_read_as_mappings_under_wire_names() -> None:
    split = Split.from_api(FULL)
    assert isinstance(split, Mapping)
    assert split["status"] == split.status == "failed"
    assert split["stemModel"] == "htdemucs_6s" and split["durationSeconds"] == 12.5
    assert split["createdAt"] == split.created_at  # typed values, not wire strings
    assert split["error"]["code"] == "SEPARATION_FAILED"
    assert split["error"].get("message") == "engine died"
    assert "stems" in split and "error" in split and "stem_model" not in split
    assert split.get("progress") == 0.4 and split.get("nope", "default") == "default"
    assert split["somethingNew"] is True  # unknown keys come from raw
    assert list(split)[:3] == ["id", "status", "stemModel"]
    assert list(split.keys())[-1] == "somethingNew"
    assert len(split) == len(dict(split)) == 14
    with pytest.raises(KeyError):
        split["stem_model"]
    with pytest.raises(TypeError):
        split["status"] = "queued"  # type: ignore[index]
    # Still a frozen dataclass: equality and hashing field by field.
    assert split == Split.from_api(FULL) and hash(split) == hash(Split.from_api(FULL))
    assert split != Split.from_api({**FULL, "status": "queued"})


def test_events_read_as_the_documentation_writes_them() -> None:
    event = WebhookEvent.from_api(
        {
            "id": "evt_1",
            "type": "split.failed",
            "created": 1700000000,
            "data": {**FULL, "stems": {"vocals": "https://x/v.wav"}},
        }
    )
    assert event["type"] == "split.failed" and event["data"] is event.data
    assert event.data["stems"] == {"vocals": "https://x/v.wav"}
    assert event.data["error"]["code"] == "SEPARATION_FAILED"
    thin = WebhookEvent.from_api({"event": "audio.split.completed", "data": {"id": "s"}})
    assert thin["event"] == "audio.split.completed" == thin["type"]
    assert thin.data["error"] is None and thin.data.get("stems") == {}


def test_other_results_read_as_mappings() -> None:
    upload = Upload.from_api({"uploadId": "upl_1", "uploadUrl": "http://h/u", "audioUrl": "a"})
    assert upload["uploadUrl"] == "http://h/u" and upload["audioUrl"] == "a"
    assert upload["uploadMethod"] == "PUT"
    uploaded = UploadedInput("upl_2", url="http://h/a", key="k")
    assert uploaded["uploadId"] == "upl_2" and uploaded["url"] == "http://h/a"
    credits = Credits.from_api({"balance": 60, "unit": "seconds"})
    assert dict(credits) == {"balance": 60, "unit": "seconds"}
    page = SplitPage.from_api({"items": [FULL], "nextCursor": "c2"})
    assert page["items"][0]["id"] == "split_1" and page["nextCursor"] == "c2"
    assert page.get("missing") is None


def test_hostile_field_values_are_dropped_not_raised() -> None:
    split = Split.from_api(
        {
            "id": "s",
            "status": "queued",
            "createdAt": 1e300,
            "updatedAt": -1e20,
            "progress": float("nan"),
            "durationSeconds": "inf",
            "stemModel": ["x"],
            "error": {"code": 5, "message": None},
        }
    )
    assert split.created_at is None and split.updated_at is None
    assert split.progress is None and split.duration_seconds is None
    assert split.stem_model is None
    assert split.error is not None and split.error.code is None
    assert split.error.message == "split failed"
