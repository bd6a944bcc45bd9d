"""Parsing the wire's dicts into the typed results."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from django_aistemsplitter.client import Credits, Split, SplitPage, Upload, UploadedInput

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
