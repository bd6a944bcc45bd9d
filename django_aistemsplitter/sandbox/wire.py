"""How sandbox records look on the wire (camelCase, ISO timestamps, signed URLs).

Stem URLs are signed afresh each time a split is rendered, like the hosted
service's presigned links: whoever reads a split gets links valid for the full TTL.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django_aistemsplitter import contract
from django_aistemsplitter.sandbox.routing import compile_template
from django_aistemsplitter.sandbox.signed_urls import DOWNLOAD, UPLOAD, UrlSigner
from django_aistemsplitter.sandbox.store import Split, Upload

UPLOAD_PATH = "/uploads/{id}"
UPLOAD_AUDIO_PATH = "/files/uploads/{id}"
STEM_PATH = "/files/splits/{id}/{file}"
_UPLOAD_AUDIO_PATTERN = compile_template(UPLOAD_AUDIO_PATH)


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a ``Z``, as JavaScript services write it."""
    text = moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def iso_unix(seconds: int) -> str:
    return iso(datetime.fromtimestamp(seconds, timezone.utc))


class Links:
    """Absolute, signed URLs under the server's public base."""

    def __init__(self, base: str, signer: UrlSigner, ttl_seconds: float) -> None:
        self.base = base.rstrip("/")
        self.signer = signer
        self.ttl = ttl_seconds

    def _url(self, purpose: str, path: str) -> tuple[str, int]:
        signed, expires = self.signer.sign(purpose, path, self.ttl)
        return self.base + signed, expires

    def upload(self, upload_id: str) -> tuple[str, int]:
        return self._url(UPLOAD, UPLOAD_PATH.format(id=upload_id))

    def upload_audio(self, upload_id: str) -> str:
        return self._url(DOWNLOAD, UPLOAD_AUDIO_PATH.format(id=upload_id))[0]

    def parse_upload_audio(self, url: str) -> tuple[str, str, dict[str, str]] | None:
        """``(upload id, path, query)`` when ``url`` is an :meth:`upload_audio` link
        under this base (signature not checked here); None for any other URL."""
        parts, base = urlsplit(url), urlsplit(self.base)
        if (parts.scheme, parts.netloc.lower()) != (base.scheme, base.netloc.lower()):
            return None
        prefix = base.path.rstrip("/")
        if not parts.path.startswith(prefix + "/"):
            return None
        path = parts.path[len(prefix) :]
        found = _UPLOAD_AUDIO_PATTERN.match(path)
        if found is None:
            return None
        return found["id"], path, dict(parse_qsl(parts.query))

    def stem(self, split_id: str, filename: str) -> str:
        return self._url(DOWNLOAD, STEM_PATH.format(id=split_id, file=filename))[0]


def upload_to_wire(upload: Upload, links: Links) -> dict[str, Any]:
    url, expires = links.upload(upload.id)
    return {
        "uploadId": upload.id,
        "uploadUrl": url,
        "uploadMethod": "PUT",
        "uploadHeaders": {"Content-Type": upload.content_type},
        "expiresAt": iso_unix(expires),
        "audioUrl": links.upload_audio(upload.id),
        "key": upload.storage_key,
    }


def split_to_wire(split: Split, links: Links) -> dict[str, Any]:
    stems = (
        {name: links.stem(split.id, path.name) for name, path in split.stems.items()}
        if split.status == contract.SUCCEEDED
        else {}
    )
    return {
        "id": split.id,
        "status": split.status,
        "stemModel": split.stem_model,
        "outputFormat": split.output_format,
        "filename": split.filename,
        "durationSeconds": round(split.duration, 3),
        "creditsUsed": split.credits_used,
        "progress": round(split.progress, 4),
        "createdAt": iso(split.created_at),
        "updatedAt": iso(split.updated_at),
        "stems": stems,
        "error": dict(split.error) if split.error else None,
        "metadata": dict(split.metadata),
    }
