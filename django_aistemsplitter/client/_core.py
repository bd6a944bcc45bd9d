"""Every operation of the client, written once, without doing any I/O itself.

Each public method of :class:`Core` that returns an ``Op`` is a generator: it
yields :class:`~._effects.Request` / :class:`~._effects.Sleep` effects and gets
their outcomes back, so ``AiStemSplitter`` (blocking) and
``AsyncAiStemSplitter`` (asyncio) only differ in how they perform an effect.
Retries, error mapping, idempotency keys, pagination and the poll schedule are
all here and nowhere else; the download policy is in :mod:`.downloads`, whose
operation the core runs through its own retrying ``send``.

Local files are touched directly (open, temp file, rename): they are fast,
and keeping them in the core keeps the cleanup rules in one place.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit

from django_aistemsplitter import contract
from django_aistemsplitter._version import __version__
from django_aistemsplitter.client import signing
from django_aistemsplitter.client._effects import (
    Emit,
    FileBody,
    Op,
    Request,
    Response,
    Sleep,
    TransportFailure,
    Walk,
)
from django_aistemsplitter.client.downloads import DownloadPolicy, save_url
from django_aistemsplitter.client.errors import (
    decode_data,
    error_from_response,
    is_retryable,
)
from django_aistemsplitter.client.events import find_header, parse_event
from django_aistemsplitter.client.exceptions import (
    APIError,
    APITimeoutError,
    AuthenticationError,
    ConfigurationError,
    DownloadError,
    IncompleteDownloadError,
    InvalidRequestError,
    SplitFailedError,
    UnsafeStemNameError,
)
from django_aistemsplitter.client.polling import (
    DEFAULT_MAX_RETRY_AFTER,
    PollSchedule,
    RetryPolicy,
    estimate_remaining,
)
from django_aistemsplitter.client.types import (
    Credits,
    Pager,
    Split,
    SplitPage,
    Upload,
    UploadedInput,
    WebhookEvent,
)

logger = logging.getLogger("django_aistemsplitter.client")

USER_AGENT = f"django-aistemsplitter/{__version__}"
DEFAULT_WAIT_TIMEOUT = 900.0

#: What ``create_split(input=...)`` accepts.
SplitInput = str | Mapping[str, Any] | Upload | UploadedInput
#: Header mappings: a dict, Django's ``request.headers`` or even ``request.META``.
Headers = Mapping[str, Any]
FileSource = str | os.PathLike[str] | IO[bytes]
_INPUT_TYPES = ("direct_url", "uploaded_file")


def _secrets_from(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """The constructor's ``webhook_secret``, else the environment's (comma-separated)."""
    try:
        if value is None:
            return signing.parse_secrets(
                os.environ.get(contract.WEBHOOK_SECRET_ENV), split_commas=True
            )
        return signing.parse_secrets(
            value if isinstance(value, (str, list, tuple)) else list(value), split_commas=False
        )
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"webhook_secret: {exc}") from None


def default_download_policy(base_url: str) -> DownloadPolicy:
    """Stems from any host (presigned storage URLs live elsewhere), over https.

    Plain http is allowed only when the API itself is spoken over http (a local
    sandbox), whose stem URLs are http too.
    """
    return DownloadPolicy(allow_http=urlsplit(base_url).scheme == "http")


@dataclass(frozen=True)
class Config:
    """What a client is set up with; secrets are left out of ``repr``."""

    api_key: str | None = field(default=None, repr=False)
    base_url: str = contract.DEFAULT_BASE_URL
    webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    timeout: float | None = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    poll: PollSchedule = field(default_factory=PollSchedule)
    download_policy: DownloadPolicy = field(default_factory=DownloadPolicy)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        api_key: str | None,
        *,
        base_url: str | None,
        webhook_secret: str | Iterable[str] | None,
        timeout: float | None,
        max_retries: int,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        download_policy: DownloadPolicy | None = None,
    ) -> Config:
        if max_retries < 0:
            raise ConfigurationError("max_retries must be 0 or more")
        if not max_retry_after >= 0:  # NaN too
            raise ConfigurationError("max_retry_after must be 0 or more seconds")
        url = (base_url or contract.DEFAULT_BASE_URL).rstrip("/")
        return cls(
            api_key=api_key or os.environ.get(contract.API_KEY_ENV) or None,
            base_url=url,
            webhook_secrets=_secrets_from(webhook_secret),
            timeout=timeout,
            retry=RetryPolicy(max_retries=max_retries, max_retry_after=max_retry_after),
            download_policy=download_policy or default_download_policy(url),
        )


def _is_url(value: str) -> bool:
    return urlsplit(value).scheme in ("http", "https")


def coerce_input(value: SplitInput) -> dict[str, Any]:
    """The wire ``input`` object for whatever the caller had at hand."""
    if isinstance(value, (Upload, UploadedInput)):
        return value.to_input()
    if isinstance(value, str):
        if not _is_url(value):
            raise InvalidRequestError(
                "input must be an http(s) URL, an upload or an input dict; "
                "send local files with upload_file() first",
                code="INVALID_REQUEST",
            )
        return {"type": "direct_url", "url": value}
    if isinstance(value, Mapping):
        if value.get("type") not in _INPUT_TYPES:
            raise InvalidRequestError(
                f"input type must be one of {', '.join(_INPUT_TYPES)}", code="INVALID_REQUEST"
            )
        return dict(value)
    raise InvalidRequestError(
        f"cannot use a {type(value).__name__} as input; upload files with upload_file()",
        code="INVALID_REQUEST",
    )


def resolve_model(stem_model: str, model: str | None) -> str:
    """One hosted model name from ``stem_model``/``model`` and the SDK's aliases."""
    chosen = contract.normalize_model(model if model is not None else stem_model)
    explicit = model is not None and stem_model != contract.DEFAULT_MODEL
    if explicit and contract.normalize_model(stem_model) != chosen:
        raise InvalidRequestError(
            "stem_model and model disagree; pass only one", code="INVALID_REQUEST"
        )
    if chosen not in contract.MODELS:
        raise InvalidRequestError(
            f"unknown stem model {chosen!r}; expected one of {', '.join(contract.MODELS)}",
            code="INVALID_REQUEST",
        )
    return chosen


def _path_id(value: str | Split, what: str) -> str:
    """A resource id as one URL path segment, so an id can never walk the path."""
    raw = value.id if isinstance(value, Split) else value
    if not isinstance(raw, str) or not raw:
        raise InvalidRequestError(f"{what} must be a non-empty string", code="INVALID_REQUEST")
    return quote(raw, safe="")


def _content_type(filename: str | None) -> str:
    suffix = Path(filename or "").suffix.lower().lstrip(".")
    return contract.CONTENT_TYPES.get(suffix, "application/octet-stream")


def _stem_extension(url: str, split: Split) -> str:
    """The stem's file extension: the URL's own, else the split's format, else wav."""
    suffix = Path(urlsplit(url).path).suffix.lower().lstrip(".")
    if suffix in contract.CONTENT_TYPES:
        return suffix
    fmt = (split.output_format or "").lower()
    return fmt if fmt in contract.OUTPUT_FORMATS else contract.DEFAULT_OUTPUT_FORMAT


def _upload_answer(response: Response) -> dict[str, Any]:
    """Upload hosts answer with nothing or with ``{"success": true, "data": {url, key}}``."""
    try:
        payload = json.loads(response.content) if response.content.strip() else None
    except ValueError:
        return {}
    data = payload.get("data") if isinstance(payload, Mapping) else None
    return dict(data) if isinstance(data, Mapping) else {}


class Core:
    """The sans-IO client; drivers run its operations."""

    def __init__(self, config: Config) -> None:
        self.config = config
        #: The client that pages returned by ``list_splits`` walk on with.
        self.pager: Pager | None = None

    # --- plumbing --------------------------------------------------------------

    def _api_key(self) -> str:
        key = self.config.api_key or os.environ.get(contract.API_KEY_ENV)
        if not key:
            raise AuthenticationError(
                f"no API key: pass api_key= to the client or set {contract.API_KEY_ENV}",
                code="MISSING_API_KEY",
            )
        return key

    def _secrets(self) -> tuple[str | None, ...]:
        return (
            self.config.api_key,
            os.environ.get(contract.API_KEY_ENV),
            *self.config.webhook_secrets,
        )

    def send(
        self, request: Request, *, check: Callable[[Response], Exception | None] | None = None
    ) -> Op[Response]:
        """Perform ``request``, retrying what may succeed later; the single retry loop.

        The request object is re-sent unchanged, so a retried ``POST /audio/splits``
        carries the same ``Idempotency-Key`` and cannot create a second split.
        """
        policy = self.config.retry
        attempt = 0
        while True:
            reply = yield request
            error = self._failure(request, reply, check)
            if error is None:
                assert isinstance(reply, Response)
                return reply
            if attempt >= policy.max_retries or not is_retryable(error):
                raise error
            delay = policy.delay(attempt, getattr(error, "retry_after", None), self.config.rng)
            attempt += 1
            logger.debug(
                "%s failed (%s); retry %d/%d in %.2fs",
                request.label,
                getattr(error, "code", None) or type(error).__name__,
                attempt,
                policy.max_retries,
                delay,
            )
            yield Sleep(delay)

    def _failure(
        self,
        request: Request,
        reply: Response | TransportFailure,
        check: Callable[[Response], Exception | None] | None,
    ) -> Exception | None:
        if isinstance(reply, TransportFailure):
            logger.debug("%s -> %s", request.label, reply.error)
            return reply.error
        request_id = reply.headers.get(contract.REQUEST_ID_HEADER)
        logger.debug("%s -> %d (request id %s)", request.label, reply.status_code, request_id)
        if not reply.ok:
            return error_from_response(
                reply.status_code, reply.headers, reply.content, secrets=self._secrets()
            )
        return check(reply) if check is not None else None

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Op[Any]:
        """An authenticated API call; returns the envelope's ``data``."""
        all_headers = {
            contract.AUTH_HEADER: f"Bearer {self._api_key()}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            **(headers or {}),
        }
        content = None
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":")).encode()
            all_headers["Content-Type"] = "application/json"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        request = Request(
            method,
            self.config.base_url + path,
            headers=all_headers,
            params=query or None,
            content=content,
            timeout=self.config.timeout,
        )
        response = yield from self.send(request)
        return decode_data(response.status_code, response.headers, response.content)

    # --- splits ----------------------------------------------------------------

    def create_split(
        self,
        input: SplitInput,
        stem_model: str = contract.DEFAULT_MODEL,
        webhook_url: str | None = None,
        output_format: str = contract.DEFAULT_OUTPUT_FORMAT,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        *,
        model: str | None = None,
    ) -> Op[Split]:
        """Submit audio for separation; returns the new split (``queued``).

        ``input`` is a URL, the result of ``upload_file``/``presign_upload``, or a
        wire input dict. ``model`` is an alias of ``stem_model`` and ``"4s"``/``"6s"``
        are accepted. An ``Idempotency-Key`` is always sent (a fresh UUID unless
        given) and reused on every retry, so a timeout or 5xx after the server
        created the split does not create a second one. Pass your own key to make
        a resubmission across processes safe too.
        """
        chosen = resolve_model(stem_model, model)
        if output_format not in contract.OUTPUT_FORMATS:
            raise InvalidRequestError(
                f"unknown output format {output_format!r}; expected one of "
                f"{', '.join(contract.OUTPUT_FORMATS)}",
                code="INVALID_REQUEST",
            )
        body: dict[str, Any] = {
            "input": coerce_input(input),
            "stemModel": chosen,
            "outputFormat": output_format,
        }
        if webhook_url is not None:
            body["webhookUrl"] = webhook_url
        if metadata is not None:
            body["metadata"] = dict(metadata)
        key = idempotency_key or str(uuid.uuid4())
        data = yield from self.call(
            "POST", "/audio/splits", json_body=body, headers={contract.IDEMPOTENCY_HEADER: key}
        )
        return Split.from_api(data)

    def get_split(self, split_id: str | Split) -> Op[Split]:
        """Fetch a split's current state (and fresh stem URLs once it succeeded)."""
        data = yield from self.call("GET", f"/audio/splits/{_path_id(split_id, 'split_id')}")
        return Split.from_api(data)

    def wait_for_split(
        self,
        split_id: str | Split,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        interval: float | None = None,
    ) -> Op[Split]:
        """Poll until the split is ``succeeded`` or ``failed`` and return it.

        Polls back off geometrically (2 s, 3 s, 4.5 s ... at most 30 s) and are
        brought forward when the split's progress says it is about to finish, so
        a two-minute job costs about ten requests instead of sixty. A failed split
        is returned, not raised: check ``split.failed``. Raises
        :class:`APITimeoutError` when ``timeout`` seconds pass first (``None``:
        wait for ever). ``interval`` sets the first delay.
        """
        schedule = self.config.poll
        if interval is not None:
            schedule = replace(schedule, initial=interval)
        clock = self.config.clock
        start = clock()
        samples: list[tuple[float, float]] = []
        polls = 0
        while True:
            split = yield from self.get_split(split_id)
            now = clock() - start
            if split.is_terminal:
                return split
            if split.progress is not None:
                samples.append((now, split.progress))
            delay = schedule.delay(polls, estimate_remaining(samples))
            if timeout is not None:
                if now >= timeout:
                    raise APITimeoutError(
                        f"split {split.id} still {split.status} after {timeout:g}s",
                        code="WAIT_TIMEOUT",
                    )
                delay = min(delay, timeout - now)
            yield Sleep(delay)
            polls += 1

    def list_splits(
        self,
        limit: int = contract.LIST_LIMIT_DEFAULT,
        cursor: str | None = None,
        status: str | None = None,
    ) -> Op[SplitPage]:
        """One page of splits, newest first; walk on with ``page.iter_all()``/``async for``."""
        data = yield from self.call(
            "GET", "/audio/splits", params={"limit": limit, "cursor": cursor, "status": status}
        )
        return SplitPage.from_api(data, limit=limit, status=status, pager=self.pager)

    def walk_pages(self, page: SplitPage) -> Walk:
        """Every split of ``page`` and of the pages after it, fetched lazily.

        This is what ``page.iter_all()`` and ``async for split in page`` run.
        """
        while True:
            for item in page.items:
                yield Emit(item)
            if not page.next_cursor:
                return
            limit = page.limit or contract.LIST_LIMIT_DEFAULT
            page = yield from self.list_splits(limit, page.next_cursor, page.status)

    def iter_splits(
        self, limit: int = contract.LIST_LIMIT_DEFAULT, status: str | None = None
    ) -> Walk:
        """Every split of the account (optionally of one status), newest first."""
        first = yield from self.list_splits(limit, None, status)
        yield from self.walk_pages(first)

    # --- uploads -----------------------------------------------------------------

    def presign_upload(self, filename: str, content_type: str, content_length: int) -> Op[Upload]:
        """Reserve an upload slot; send the bytes to ``upload.upload_url`` next.

        Use this for audio over the gateway's 50 MB limit or that is not on a
        public URL; ``upload_file`` does both steps for you.
        """
        data = yield from self.call(
            "POST",
            "/audio/uploads",
            json_body={
                "filename": filename,
                "contentType": content_type,
                "contentLength": content_length,
            },
        )
        return Upload.from_api(data)

    def upload_file(
        self,
        path_or_file: FileSource,
        *,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> Op[UploadedInput]:
        """Upload a local file (path or seekable binary file) and return the split input.

        The bytes are streamed in chunks, never read whole, with the length taken
        from the file system, so large files cost no memory. A path is opened and
        closed here; a file object stays open for the caller.
        """
        body = FileBody.open(path_or_file)
        try:
            name = filename or body.name or "audio"
            ctype = content_type or _content_type(name)
            upload = yield from self.presign_upload(name, ctype, body.length)
            headers = {"User-Agent": USER_AGENT, "Content-Type": ctype, **upload.upload_headers}
            headers["Content-Length"] = str(body.length)
            request = Request(
                upload.upload_method,
                upload.upload_url,
                headers=headers,
                body=body,
                timeout=self.config.timeout,
            )
            answer = _upload_answer((yield from self.send(request)))
        finally:
            body.close()
        return UploadedInput(
            upload_id=upload.upload_id,
            filename=name,
            content_length=body.length,
            url=answer.get("url"),
            key=answer.get("key"),
            upload=upload,
        )

    # --- downloads ---------------------------------------------------------------

    def download_stems(
        self, split_or_id: str | Split, directory: str | os.PathLike[str]
    ) -> Op[dict[str, Path]]:
        """Save every stem of a succeeded split as ``<directory>/<stem>.<ext>``.

        Each stem streams to a hidden temporary file that is renamed into place
        only when complete, so a reader never sees half a file; a cut or short
        body is retried and then raises :class:`DownloadError`, leaving nothing
        behind. Stem names are checked before anything touches the disk, so a
        hostile name like ``../../x`` cannot write outside ``directory``; stem
        URLs, redirects included, must pass the client's ``download_policy``.
        Raises :class:`SplitFailedError` for a failed split.
        """
        split = split_or_id
        if not isinstance(split, Split) or not split.is_terminal:
            split = yield from self.get_split(split_or_id)
        if split.failed:
            error = split.error
            raise SplitFailedError(
                f"split {split.id} failed: {error.message if error else 'no reason given'}",
                code=error.code if error else None,
                split_id=split.id,
            )
        if not split.succeeded:
            raise DownloadError(f"split {split.id} is {split.status}; wait_for_split() first")
        unsafe = sorted(name for name in split.stems if not contract.is_safe_stem_name(name))
        if unsafe:
            raise UnsafeStemNameError(f"refusing unsafe stem names: {unsafe!r}")
        if not split.stems:
            raise DownloadError(f"split {split.id} succeeded but lists no stems")
        target_dir = Path(directory)
        target_dir.mkdir(parents=True, exist_ok=True)
        saved: dict[str, Path] = {}
        for name, url in split.stems.items():
            target = target_dir / f"{name}.{_stem_extension(url, split)}"
            saved[name] = yield from self._download(url, target)
        return saved

    def _download(self, url: str, target: Path) -> Op[Path]:
        def send(request: Request, check: Callable[[Response], Exception | None]) -> Op[Response]:
            return self.send(request, check=check)

        try:
            # No Authorization header: stem URLs are presigned and may live on another host.
            yield from save_url(
                url,
                target,
                policy=self.config.download_policy,
                send=send,
                timeout=self.config.timeout,
                headers={"User-Agent": USER_AGENT},
                clock=self.config.clock,
            )
        except APIError as exc:  # the stem host answered an error, or could not be reached
            raise IncompleteDownloadError(f"could not download {target.name}: {exc}") from exc
        return target

    # --- account and webhooks ------------------------------------------------------

    def get_credits(self) -> Op[Credits]:
        """The prepaid balance, in seconds of audio."""
        data = yield from self.call("GET", "/credits")
        return Credits.from_api(data)

    def verify_webhook(
        self,
        headers: Headers,
        raw_body: bytes | str,
        *,
        tolerance: int | None = contract.SIGNATURE_TOLERANCE_SECONDS,
    ) -> WebhookEvent:
        """Check a delivery's signature and parse it into a :class:`WebhookEvent`.

        Pass the body exactly as received (``request.body``): the signature covers
        bytes, and re-serialised JSON would not match. This is
        :func:`~django_aistemsplitter.client.verify_signature` followed by
        :func:`~django_aistemsplitter.client.parse_event`. Raises
        :class:`SignatureVerificationError` (answer 400) for a missing, stale or
        wrong signature, and its subclass :class:`MalformedWebhookError` for a
        signed body that is not an event. Either event shape is accepted;
        ``event.needs_fetch`` says when to ``get_split`` for stems. Several secrets
        (a list, or commas in ``AISTEMSPLITTER_WEBHOOK_SECRET``) allow rotating
        without downtime. A plain method on the async client too: it is pure
        computation, nothing to await.
        """
        if not self.config.webhook_secrets:
            raise ConfigurationError(
                f"no webhook secret: pass webhook_secret= or set {contract.WEBHOOK_SECRET_ENV}"
            )
        body = (
            raw_body.encode("utf-8", "surrogatepass")
            if isinstance(raw_body, str)
            else bytes(raw_body)
        )
        header = find_header(headers, contract.SIGNATURE_HEADER)
        signed_at = signing.verify_signature(
            body, header, self.config.webhook_secrets, tolerance=tolerance
        )
        return parse_event(body, signed_at=signed_at)
