"""The endpoints: what each route does with the account's state.

Handlers take a :class:`Request` and return a :class:`Response` or raise
:class:`ApiError`; authentication, faults and the wire format of errors are the
server's business, so these functions read like the API's documentation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import mimetypes
import re
from pathlib import Path
from typing import Any

from django_aistemsplitter import contract
from django_aistemsplitter.sandbox.bodies import (
    MULTIPART_FRAMING_BYTES,
    is_multipart,
    save_body,
    unwrap_multipart,
)
from django_aistemsplitter.sandbox.browser import byte_range
from django_aistemsplitter.sandbox.config import SandboxConfig
from django_aistemsplitter.sandbox.errors import ApiError, success
from django_aistemsplitter.sandbox.faults import Faults
from django_aistemsplitter.sandbox.inputs import check_http_url, resolve_input
from django_aistemsplitter.sandbox.routing import (
    API,
    CONTROL,
    PUBLIC,
    SIGNED,
    Request,
    Response,
    Router,
)
from django_aistemsplitter.sandbox.signed_urls import DOWNLOAD, UPLOAD
from django_aistemsplitter.sandbox.store import Split, Stats, Store, Upload, new_id, utcnow
from django_aistemsplitter.sandbox.wire import (
    STEM_PATH,
    UPLOAD_AUDIO_PATH,
    UPLOAD_PATH,
    Links,
    split_to_wire,
    upload_to_wire,
)

UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
CURSOR_PREFIX = "seq:"


def safe_filename(name: str) -> str:
    """A file name that cannot leave its directory, keeping the extension."""
    cleaned = UNSAFE_FILENAME_CHARS.sub("_", Path(name).name).strip("._")[:100]
    return cleaned or "audio"


def fingerprint(body: dict[str, Any]) -> str:
    """Same JSON, same fingerprint, whatever the key order or whitespace."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{CURSOR_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(400, "cursor is not one this API returned") from None
    if not text.startswith(CURSOR_PREFIX) or not text[len(CURSOR_PREFIX) :].isdigit():
        raise ApiError(400, "cursor is not one this API returned")
    return int(text[len(CURSOR_PREFIX) :])


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return contract.LIST_LIMIT_DEFAULT
    if not raw.isdigit() or not 1 <= int(raw) <= contract.LIST_LIMIT_MAX:
        raise ApiError(400, f"limit must be an integer from 1 to {contract.LIST_LIMIT_MAX}")
    return int(raw)


def _choice(body: dict[str, Any], key: str, default: str, allowed: tuple[str, ...]) -> str:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str) or value not in allowed:
        raise ApiError(
            400,
            f"{key} must be one of {', '.join(allowed)}",
            details={"field": key, "allowed": list(allowed)},
        )
    return value


class SandboxApp:
    """The account and its endpoints; owned and started by the server."""

    def __init__(
        self,
        config: SandboxConfig,
        data_dir: Path,
        links: Links,
        store: Store,
        stats: Stats,
        faults: Faults,
    ) -> None:
        self.config = config
        self.data_dir = data_dir
        self.links = links
        self.store = store
        self.stats = stats
        self.faults = faults
        self.submit: Any = None  # set by the server: Processor.submit

    def router(self) -> Router:
        router = Router()
        router.add("GET", "/healthz", PUBLIC, self.health)
        router.add("GET", "/_sandbox/stats", CONTROL, self.sandbox_stats)
        router.add("GET", "/credits", API, self.credits)
        router.add("POST", "/audio/uploads", API, self.create_upload)
        router.add("POST", "/audio/splits", API, self.create_split)
        router.add("GET", "/audio/splits", API, self.list_splits)
        router.add("GET", "/audio/splits/{id}", API, self.get_split)
        router.add("PUT", UPLOAD_PATH, SIGNED, self.receive_upload)
        router.add("POST", UPLOAD_PATH, SIGNED, self.receive_upload)
        router.add("GET", UPLOAD_AUDIO_PATH, SIGNED, self.download_upload)
        router.add("GET", STEM_PATH, SIGNED, self.download_stem)
        return router

    def render(self, split: Split) -> dict[str, Any]:
        return split_to_wire(split, self.links)

    # --- introspection ---------------------------------------------------------
    def health(self, request: Request) -> Response:
        return Response(payload=success({"status": "ok"}))

    def sandbox_stats(self, request: Request) -> Response:
        snapshot = self.stats.snapshot()
        data = {**snapshot, "splits": self.store.split_count()}
        return Response(payload=success(data))

    # --- account -----------------------------------------------------------------
    def credits(self, request: Request) -> Response:
        return Response(payload=success({"balance": self.store.balance, "unit": "seconds"}))

    # --- uploads -----------------------------------------------------------------
    def create_upload(self, request: Request) -> Response:
        body = request.json()
        filename = body.get("filename") or "audio"
        content_type = body.get("contentType") or "application/octet-stream"
        length = body.get("contentLength")
        if not isinstance(filename, str) or not isinstance(content_type, str):
            raise ApiError(400, "filename and contentType must be strings")
        if length is not None and (
            isinstance(length, bool) or not isinstance(length, int) or length < 0
        ):
            raise ApiError(400, "contentLength must be a non-negative integer")
        limit = self.config.max_upload_bytes
        if length is not None and length > limit:
            raise ApiError(
                413,
                f"contentLength {length} is over the upload limit of {limit} bytes",
                details={"limit": limit, "size": length},
            )
        upload_id = new_id("upl")
        upload = Upload(
            id=upload_id,
            filename=filename,
            content_type=content_type,
            declared_length=length,
            path=self.data_dir / "uploads" / upload_id / safe_filename(filename),
        )
        self.store.add_upload(upload)
        return Response(status=201, payload=success(upload_to_wire(upload, self.links)))

    def receive_upload(self, request: Request) -> Response:
        """Store the bytes: a raw body, or a multipart form (``PUT`` or ``POST``).

        The cap is the declared ``contentLength`` (and the account's limit) for
        the *file*; a form may be larger by its framing, so its body gets that
        much room and the file part is measured once unwrapped.
        """
        self.links.signer.verify(UPLOAD, request.path, request.query)
        upload = self.store.get_upload(request.params["id"])
        limit = self.config.max_upload_bytes
        if upload.declared_length is not None:
            limit = min(limit, upload.declared_length)
        multipart = is_multipart(request.headers)
        staging = upload.path.with_name(upload.path.name + ".incoming")
        body_limit = limit + MULTIPART_FRAMING_BYTES if multipart else limit
        save_body(request.stream, request.headers, staging, body_limit)
        request.body_consumed = True
        try:
            if multipart:
                unwrap_multipart(staging, request.headers.get("Content-Type") or "")
            size = staging.stat().st_size
            if size > limit:
                raise ApiError(
                    413,
                    f"the file is {size} bytes; the limit is {limit}",
                    details={"limit": limit, "size": size},
                )
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
        staging.replace(upload.path)
        self.store.mark_uploaded(upload.id, size)
        data = {"url": self.links.upload_audio(upload.id), "key": upload.storage_key}
        return Response(payload=success(data))

    # --- splits ------------------------------------------------------------------
    def create_split(self, request: Request) -> Response:
        body = request.json()
        key = request.headers.get(contract.IDEMPOTENCY_HEADER)
        if not key:
            return Response(status=201, payload=success(self.render(self._new_split(body))))
        with self.store.idempotency_slot(key) as slot:
            if slot.entry is not None:
                if slot.entry.fingerprint != fingerprint(body):
                    raise ApiError(
                        409,
                        "this Idempotency-Key was used with a different body",
                        details={"idempotencyKey": key},
                    )
                split = self.store.get_split(slot.entry.split_id)
                return Response(status=200, payload=success(self.render(split)))
            split = self._new_split(body)
            slot.record(fingerprint(body), split.id)
        return Response(status=201, payload=success(self.render(split)))

    def _new_split(self, body: dict[str, Any]) -> Split:
        raw_model = body.get("stemModel", body.get("model")) or contract.DEFAULT_MODEL
        model = contract.normalize_model(raw_model) if isinstance(raw_model, str) else raw_model
        if model not in contract.MODELS:
            raise ApiError(
                400,
                f"stemModel must be one of {', '.join(contract.MODELS)}",
                details={"field": "stemModel", "allowed": list(contract.MODELS)},
            )
        output_format = _choice(
            body, "outputFormat", contract.DEFAULT_OUTPUT_FORMAT, contract.OUTPUT_FORMATS
        )
        webhook_url = body.get("webhookUrl")
        if webhook_url is not None:
            check_http_url(webhook_url if isinstance(webhook_url, str) else "", "webhookUrl")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ApiError(400, "metadata must be an object")
        resolved = resolve_input(
            body.get("input"),
            self.store,
            self.data_dir,
            self.config.max_direct_bytes,
            own_upload=self._own_upload,
        )
        credits_used = math.ceil(resolved.info.duration)
        self.store.reserve_credits(credits_used)
        now = utcnow()
        split = Split(
            id=new_id("split"),
            seq=self.store.next_seq(),
            stem_model=model,
            output_format=output_format,
            filename=resolved.filename,
            duration=resolved.info.duration,
            credits_used=credits_used,
            source=resolved.path,
            metadata=dict(metadata),
            webhook_url=webhook_url,
            created_at=now,
            updated_at=now,
        )
        self.store.add_split(split)
        created = self.store.get_split(split.id)  # as created: "queued", whatever runs next
        self.submit(split.id)
        return created

    def _own_upload(self, url: str) -> Upload | None:
        """The upload an ``audioUrl`` of this server names; None for any other URL.

        The SDK documentation submits ``input=upload.audio_url``: that is the
        service's own storage, so it is the uploaded file (no gateway size
        limit), not a download. A tampered or expired link is refused (403).
        """
        found = self.links.parse_upload_audio(url)
        if found is None:
            return None
        upload_id, path, query = found
        self.links.signer.verify(DOWNLOAD, path, query)
        return self.store.get_upload(upload_id)

    def get_split(self, request: Request) -> Response:
        return Response(payload=success(self.render(self.store.get_split(request.params["id"]))))

    def list_splits(self, request: Request) -> Response:
        limit = parse_limit(request.query.get("limit"))
        status = request.query.get("status") or None
        if status is not None and status not in contract.STATUSES:
            raise ApiError(400, f"status must be one of {', '.join(contract.STATUSES)}")
        cursor = request.query.get("cursor")
        before = decode_cursor(cursor) if cursor else None
        page = self.store.list_splits(status, before, limit + 1)
        more = len(page) > limit
        items = page[:limit]
        next_cursor = encode_cursor(items[-1].seq) if more and items else None
        data = {"items": [self.render(s) for s in items], "nextCursor": next_cursor}
        return Response(payload=success(data))

    # --- downloads -----------------------------------------------------------------
    def _file(self, path: Path, request: Request) -> Response:
        """The file, or the one byte range the request asks for (206; 416 past the end)."""
        if not path.is_file():
            raise ApiError(404, "the file is gone")
        ext = path.suffix.lstrip(".")
        content_type = contract.CONTENT_TYPES.get(ext) or (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        response = Response(file=path, content_type=content_type)
        response.headers["Accept-Ranges"] = "bytes"
        size = path.stat().st_size
        try:
            wanted = byte_range(request.headers.get("Range"), size)
        except ValueError:
            raise ApiError(
                416,
                f"the range is outside the file's {size} bytes",
                code="RANGE_NOT_SATISFIABLE",
                headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
            ) from None
        if wanted is not None:
            first, last = wanted
            response.status = 206
            response.file_range = wanted
            response.headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        return response

    def download_upload(self, request: Request) -> Response:
        self.links.signer.verify(DOWNLOAD, request.path, request.query)
        upload = self.store.get_upload(request.params["id"])
        if upload.size is None:
            raise ApiError(404, "nothing was uploaded yet")
        return self._file(upload.path, request)

    def download_stem(self, request: Request) -> Response:
        self.links.signer.verify(DOWNLOAD, request.path, request.query)
        split = self.store.get_split(request.params["id"])
        wanted = request.params["file"]
        path = next((p for p in split.stems.values() if p.name == wanted), None)
        if path is None:
            raise ApiError(404, f"split {split.id} has no stem file {wanted!r}")
        response = self._file(path, request)
        response.truncate_at = self.faults.truncate_at(path.stat().st_size)
        response.bytes_per_second = self.faults.download_rate()
        return response
