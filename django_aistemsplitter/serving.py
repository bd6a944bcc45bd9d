"""Answering a request with a stored audio file: the one place that sends stem or source bytes.

The admin's players and download links and the REST API's stem download all
end here, after their own permission checks, so every entry point answers alike:

* a storage that signs URLs (S3 and S3-compatible stores) gets a redirect to a
  short-lived signed URL that carries the content type and download name, and
  the bytes never pass through Django (``SERVE_VIA_REDIRECT``);
* otherwise the file is streamed from storage at constant memory
  (:mod:`django_aistemsplitter.filestreams`), with one byte range on request
  (``206``; ``416`` when it lies past the end), so players can seek and
  downloads resume;
* an ``ETag`` (the stem's SHA-256; for source audio, a digest of the job and its
  stored name, which never change together) and ``Last-Modified`` let a browser
  revalidate its copy (``304``). ``Cache-Control: private, no-cache`` keeps
  shared caches out while the browser keeps and revalidates its copy.
"""

from __future__ import annotations

import datetime
import hashlib
import posixpath
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

from django.db.models.fields.files import FieldFile
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.utils.cache import get_conditional_response
from django.utils.http import (
    content_disposition_header,
    http_date,
    parse_etags,
    parse_http_date_safe,
)
from django.utils.translation import gettext

from django_aistemsplitter import contract
from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.filestreams import BUFFER_SIZE, is_s3_storage, open_stored
from django_aistemsplitter.models import SplitJob, Stem
from django_aistemsplitter.storage import ConfiguredStorage, get_storage

__all__ = [
    "CACHE_CONTROL",
    "StoredAudio",
    "content_type_for",
    "safe_filename",
    "serve",
    "signed_url",
    "source_audio",
    "stem_audio",
    "stem_filename",
    "stem_or_404",
]

#: Private (permission-checked) bytes: browsers keep them and revalidate, shared caches do not.
CACHE_CONTROL = "private, no-cache"
#: Query parameters that show a URL is signed (S3 signature v4 and v2, CloudFront).
SIGNATURE_PARAMETERS = frozenset({"X-Amz-Signature", "Signature"})
_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


def content_type_for(filename: str) -> str:
    """The audio content type of ``filename``'s extension (``application/octet-stream`` else)."""
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return contract.CONTENT_TYPES.get(ext, "application/octet-stream")


def safe_filename(name: str, default: str = "download") -> str:
    """``name`` fit for a ``Content-Disposition`` header.

    Uploaded names are user input: directories, control and formatting
    characters (a newline would break the header, a right-to-left override
    could disguise the extension) and quotes are dropped.
    """
    base = posixpath.basename(name.replace("\\", "/"))
    cleaned = "".join(
        "_" if ch in '"' else ch for ch in base if not unicodedata.category(ch).startswith("C")
    ).strip(" .")
    return cleaned or default


def stem_or_404(job: SplitJob, name: str) -> Stem:
    """The job's stem called ``name`` with a stored file, else 404 (unsafe names included)."""
    if not contract.is_safe_stem_name(name):
        raise Http404(gettext("No such stem."))
    stem = job.stems.filter(name=name).first()
    if stem is None or not stem.file:
        raise Http404(gettext("No such stem."))
    return stem


def stem_filename(stem: Stem) -> str:
    """The download name of a stem: its name with the stored file's extension (``drums.wav``)."""
    stored = stem.file.name or ""
    ext = stored.rsplit(".", 1)[-1].lower() if "." in stored else (stem.format or "").lower()
    return f"{stem.name}.{ext or contract.DEFAULT_OUTPUT_FORMAT}"


# --- what is served --------------------------------------------------------------------


@dataclass(frozen=True)
class StoredAudio:
    """A stored file with what identifies its bytes: the validators every answer carries.

    ``etag`` is a quoted strong entity tag; ``recorded_at`` is the row's date,
    used as ``Last-Modified`` when the storage cannot tell when it wrote the file.
    """

    file: FieldFile
    filename: str
    etag: str
    recorded_at: datetime.datetime | None

    @property
    def content_type(self) -> str:
        return content_type_for(self.filename)


def _digest(*parts: object) -> str:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()[:32]


def stem_audio(stem: Stem) -> StoredAudio:
    """A stem as served: named ``<stem>.<ext>``, tagged with its SHA-256."""
    tag = stem.sha256 or _digest("stem", stem.pk, stem.file.name, stem.size)
    return StoredAudio(stem.file, stem_filename(stem), f'"{tag}"', stem.created_at)


def source_audio(job: SplitJob) -> StoredAudio:
    """A job's uploaded audio as served, under its original name; 404 without one.

    The audio is stored once, when the job is created, under a name holding the
    job's id, so the job and that name identify the bytes.
    """
    if not job.audio:
        raise Http404(gettext("This job has no stored source audio."))
    name = job.original_filename or (job.audio.name or "audio").rsplit("/", 1)[-1]
    tag = _digest("source", job.pk, job.audio.name)
    return StoredAudio(job.audio, name, f'"{tag}"', job.created_at)


# --- redirect to the storage -------------------------------------------------------------


def _storage_of(field_file: FieldFile) -> Any:
    storage = field_file.storage
    return get_storage() if isinstance(storage, ConfiguredStorage) else storage


def _signs_urls(storage: Any) -> bool:
    """Whether ``storage`` is django-storages' S3 backend (or a subclass) signing its URLs.

    Its ``url()`` takes ``GetObject`` parameters, so the signed URL can also set
    the response's content type and download name.
    """
    return is_s3_storage(storage) and bool(getattr(storage, "querystring_auth", False))


def is_signed_url(url: str) -> bool:
    """Whether ``url`` is absolute http(s) and carries a signature in its query string."""
    parts = urlsplit(url)
    return (
        parts.scheme in ("http", "https")
        and bool(parts.netloc)
        and bool(SIGNATURE_PARAMETERS & set(parse_qs(parts.query)))
    )


def signed_url(audio: StoredAudio, *, as_attachment: bool) -> str | None:
    """Where to redirect for ``audio``, or None to stream it through Django.

    ``SERVE_VIA_REDIRECT`` None (the default) redirects when the storage signs
    its URLs (django-storages' S3 backend with ``querystring_auth``, the default
    there) and the URL it gives is a signed absolute one; True always redirects
    to the storage's URL (signed, with type and name, where the storage can);
    False never does.
    """
    mode = get_setting("SERVE_VIA_REDIRECT")
    if mode is False:
        return None
    storage = _storage_of(audio.file)
    name = audio.file.name
    if _signs_urls(storage):
        disposition = content_disposition_header(as_attachment, safe_filename(audio.filename))
        url = storage.url(
            name,
            parameters={
                "ResponseContentType": audio.content_type,
                "ResponseContentDisposition": disposition,
            },
            expire=int(get_setting("SERVE_URL_EXPIRY")),
        )
        if mode or is_signed_url(url):
            return str(url)
        return None
    return str(storage.url(name)) if mode else None


# --- streaming --------------------------------------------------------------------------


def _is_missing(exc: Exception) -> bool:
    """A storage's "no such file": ``OSError``, or botocore's ``ClientError`` with a 404."""
    if isinstance(exc, (OSError, ValueError)):
        return True
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound"}


def _modified_at(audio: StoredAudio) -> datetime.datetime | None:
    """When the storage wrote the file; the row's date if the storage cannot say."""
    try:
        modified = _storage_of(audio.file).get_modified_time(audio.file.name)
    except Exception:  # NotImplementedError, OSError, botocore errors: only a header is lost
        return audio.recorded_at
    return modified if isinstance(modified, datetime.datetime) else audio.recorded_at


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The ``(first, last)`` byte positions a ``Range`` header asks for, or None to send it all.

    Several ranges, another unit or bad syntax are ignored (answered whole, as
    HTTP allows). Raises ``ValueError`` for a range that lies past the end.
    """
    match = _RANGE_RE.match(header or "")
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise ValueError("empty suffix range")
        return max(0, size - suffix), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # syntactically invalid: ignore the header
    if start >= size:
        raise ValueError("range starts past the end")
    return start, min(int(last), size - 1) if last else size - 1


def _range_applies(request: HttpRequest, etag: str, modified: int | None) -> bool:
    """``If-Range``: the range stands only if the client's copy is still the current one."""
    condition = request.headers.get("If-Range", "").strip()
    if not condition:
        return True
    if condition.startswith(('"', "W/")):
        return not condition.startswith("W/") and etag in parse_etags(condition)
    return modified is not None and parse_http_date_safe(condition) == modified


def _chunks(handle: IO[bytes], start: int, length: int) -> Iterator[bytes]:
    try:
        handle.seek(start)
        while length > 0:
            chunk = handle.read(min(BUFFER_SIZE, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        handle.close()


def serve(request: HttpRequest, audio: StoredAudio, *, as_attachment: bool) -> HttpResponseBase:
    """Answer ``request`` with ``audio``: a redirect, a ``304``, a range, or the whole file.

    Callers check permissions first. A file gone from storage is a 404, not a 500.
    """
    if not audio.file:
        raise Http404(gettext("The file is missing from storage."))
    location = signed_url(audio, as_attachment=as_attachment)
    if location is not None:
        redirect = HttpResponseRedirect(location)
        redirect["Cache-Control"] = "private, no-store"  # the URL expires; never reuse it
        return redirect

    try:
        handle, size = open_stored(audio.file)
    except Exception as exc:
        if _is_missing(exc):
            raise Http404(gettext("The file is missing from storage.")) from exc
        raise
    modified = _modified_at(audio)
    timestamp = int(modified.timestamp()) if modified else None
    validators = {"ETag": audio.etag, "Cache-Control": CACHE_CONTROL, "Accept-Ranges": "bytes"}
    if timestamp is not None:
        validators["Last-Modified"] = http_date(timestamp)

    def finish(response: HttpResponseBase) -> HttpResponseBase:
        for header, value in validators.items():
            response[header] = value
        return response

    unchanged = HttpResponse()
    finish(unchanged)
    answer = get_conditional_response(
        request, etag=audio.etag, last_modified=timestamp, response=unchanged
    )
    if (
        answer is not None and answer is not unchanged
    ):  # 304 Not Modified (headers kept) or 412 Precondition Failed
        handle.close()
        return finish(answer)

    try:
        wanted = byte_range(request.headers.get("Range", ""), size)
    except ValueError:
        handle.close()
        refused = HttpResponse(status=416)
        refused["Content-Range"] = f"bytes */{size}"
        return finish(refused)
    if wanted is not None and not _range_applies(request, audio.etag, timestamp):
        wanted = None

    filename = safe_filename(audio.filename)
    if wanted is None:
        whole = FileResponse(
            handle,
            as_attachment=as_attachment,
            filename=filename,
            content_type=audio.content_type,
        )
        whole["Content-Length"] = str(size)
        return finish(whole)
    first, last = wanted
    partial = StreamingHttpResponse(
        _chunks(handle, first, last - first + 1), status=206, content_type=audio.content_type
    )
    partial["Content-Length"] = str(last - first + 1)
    partial["Content-Range"] = f"bytes {first}-{last}/{size}"
    partial["Content-Disposition"] = content_disposition_header(as_attachment, filename) or ""
    return finish(partial)
