"""Whether a request to split is valid, decided in one place for every entry point.

The admin add form, the REST API serializer, ``manage.py split_audio`` and
:func:`django_aistemsplitter.services.split` all hand the raw request (a file or
a URL, a model, an output format, optionally a backend) to
:func:`validate_split_request`. It either returns a :class:`ValidSplitRequest`
or raises :class:`InvalidSplitRequest`, whose ``code`` names the rule that
refused the request and whose ``field`` names the input at fault; each entry
point maps that to its own error shape (a form field error, a 400 keyed by field,
one command line). Because every rule lives here once, the entry points cannot
disagree about a request, and a rule is changed in one place.

Audio is held to the site's limits (sample rate, channels, duration: settings),
and the length its header claims is checked against the file itself
(:mod:`django_aistemsplitter.engines.plausibility`), so a small forged file cannot
pass for hours of audio. A ``source_url`` must resolve to public addresses only
(unless ``ALLOW_PRIVATE_SOURCE_URLS``): the service fetches it, and a URL naming
a loopback, private or cloud metadata address must not become a way to reach
what only the servers can reach.

The answer carries what the checks learnt (the normalised model name, the audio's
:class:`~django_aistemsplitter.engines.audio.AudioInfo`), so
:func:`~django_aistemsplitter.services.create_split` builds the job from it
without decoding the audio a second time.

This module belongs to the services layer: it knows backends, settings and the
audio decoder, never forms, DRF, the admin or Celery tasks.
"""

from __future__ import annotations

import ipaddress
import posixpath
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.validators import URLValidator
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from django_aistemsplitter import contract
from django_aistemsplitter.backends import BaseBackend, get_backend
from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.engines.audio import AudioInfo, probe
from django_aistemsplitter.engines.plausibility import length_problem
from django_aistemsplitter.exceptions import (
    AiStemSplitterError,
    AudioDecodeError,
    UnsupportedModelError,
)
from django_aistemsplitter.models import SplitJob

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

#: A plain or lazily translated message.
Message = Union[str, "_StrPromise"]

__all__ = [
    "FileTooLargeError",
    "InvalidAudioError",
    "InvalidSplitRequest",
    "UnknownModelError",
    "ValidSplitRequest",
    "available_models",
    "clean_filename",
    "default_model",
    "file_too_large",
    "is_public_address",
    "max_upload_bytes",
    "validate_split_request",
]


# --- errors ----------------------------------------------------------------------


class InvalidSplitRequest(AiStemSplitterError, ValueError):
    """A request to split was refused before anything was stored or created.

    ``code`` names the rule that refused it, the same whichever entry point was
    used: ``source`` (not exactly one of a file and a URL), ``url_unsupported``
    (a URL, but the backend only takes files), ``bad_url``, ``url_forbidden`` (the
    host resolves to a non-public address), ``url_unresolvable``, ``unknown_model``,
    ``bad_format``, ``empty``, ``too_large``, ``not_audio``, ``implausible`` (the
    header claims a length the file cannot hold), ``sample_rate``, ``channels`` or
    ``too_long`` (over ``MAX_DURATION_SECONDS``). ``field`` is the
    input at fault (``audio``, ``source_url``, ``stem_model``, ``output_format``)
    or ``None`` when the request as a whole is wrong.

    ``message`` is the user-facing sentence (lazily translated) before ``params``
    are put in, so a Django ``ValidationError`` can be built from it unchanged;
    ``str()`` gives the finished sentence.
    """

    def __init__(
        self,
        message: Message,
        *,
        code: str,
        field: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.message: Message = message
        self.code = code
        self.field = field
        self.params: dict[str, Any] = dict(params or {})
        super().__init__(message)

    def __str__(self) -> str:
        text = str(self.message)
        return text % self.params if self.params else text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, field={self.field!r})"


class FileTooLargeError(InvalidSplitRequest):
    """The audio is over ``MAX_UPLOAD_BYTES`` (code ``too_large``)."""


class InvalidAudioError(InvalidSplitRequest, AudioDecodeError):
    """The upload is empty (code ``empty``), not decodable audio (``not_audio``), or its
    header claims a length the file cannot hold (``implausible``)."""


class UnknownModelError(InvalidSplitRequest, UnsupportedModelError):
    """The backend does not serve the model, even after aliases (code ``unknown_model``)."""


# --- the answer ------------------------------------------------------------------


@dataclass(frozen=True)
class ValidSplitRequest:
    """A request that passed every check: what a job is created from.

    Exactly one of ``file`` (with its probed ``audio`` info) and ``url`` is set.
    ``file`` is the caller's open file, left at its start; it must stay open
    until the job is created.
    """

    backend: str
    stem_model: str
    output_format: str
    filename: str
    file: File | None = None
    audio: AudioInfo | None = None
    url: str | None = None


# --- models ----------------------------------------------------------------------


def available_models(backend: str | None = None) -> list[str]:
    """Models the backend (default: the configured one) accepts, default first."""
    return get_backend(backend).available_models()


def default_model(backend: str | None = None) -> str:
    """``DEFAULT_MODEL``, or the backend's own default when that setting is None."""
    return str(get_setting("DEFAULT_MODEL") or get_backend(backend).default_model)


def _shown(value: str, limit: int = 64) -> str:
    """``value`` as echoed in a message: cut, so a huge input is not sent back whole."""
    return value if len(value) <= limit else f"{value[:limit]}…"


def _check_model(splitter: BaseBackend, name: str) -> str:
    try:
        return splitter.check_model(name)
    except UnsupportedModelError as exc:
        raise UnknownModelError(
            _("Unknown model %(model)s; available: %(models)s."),
            code="unknown_model",
            field="stem_model",
            params={
                "value": _shown(name),
                "model": repr(_shown(name)),
                "models": ", ".join(splitter.available_models()) or "-",
            },
        ) from exc


# --- the checks ------------------------------------------------------------------


def _check_source(audio: File | None, url: str | None) -> None:
    if audio is not None and url is not None:
        raise InvalidSplitRequest(_("Give either an audio file or a URL, not both."), code="source")
    if audio is None and url is None:
        raise InvalidSplitRequest(_("Upload an audio file or give its URL."), code="source")


def _check_url(splitter: BaseBackend, url: str) -> str:
    if not splitter.accepts_urls:
        raise InvalidSplitRequest(
            _(
                "The %(backend)s backend separates uploaded audio only: upload the file "
                "instead of giving a URL, or use a remote backend."
            ),
            code="url_unsupported",
            params={"backend": repr(splitter.name)},
        )
    limit = _max_length("source_url")
    try:
        if len(url) > limit:
            raise ValidationError("too long")
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError as exc:
        raise InvalidSplitRequest(
            _("Enter a valid http(s) URL of at most %(limit)d characters."),
            code="bad_url",
            field="source_url",
            params={"limit": limit},
        ) from exc
    return url


#: IPv6 prefix of NAT64 gateways (RFC 6052): its last 32 bits are an IPv4 address.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def is_public_address(address: str) -> bool:
    """Whether ``address`` (an IP literal) is a public unicast address.

    Loopback, private, link-local (``169.254.169.254``, where clouds serve instance
    credentials), shared (CGNAT), documentation, reserved, multicast and unspecified
    addresses are not; nor is an IPv6 address that carries one of those inside it
    (IPv4-mapped, 6to4, NAT64).
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if ip in _NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None and not is_public_address(str(inner)):
            return False
        if ip.is_site_local:
            return False
    return ip.is_global and not (
        ip.is_multicast
        or ip.is_private
        or ip.is_reserved
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_unspecified
    )


def _check_url_address(url: str) -> None:
    """Every address the URL's host resolves to must be public (``ALLOW_PRIVATE_SOURCE_URLS``).

    The check runs on what DNS answers now; the service resolves the name again
    when it fetches, so this is a policy on what users may name, not a guarantee
    against a name whose answer changes in between.
    """
    if get_setting("ALLOW_PRIVATE_SOURCE_URLS"):
        return
    host = urlsplit(url).hostname or ""
    try:
        answers = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:
        raise InvalidSplitRequest(
            _("The URL's host %(host)s could not be resolved."),
            code="url_unresolvable",
            field="source_url",
            params={"host": repr(host)},
        ) from exc
    if not answers or not all(is_public_address(str(answer[4][0])) for answer in answers):
        raise InvalidSplitRequest(
            _(
                "The URL points at a loopback, private, link-local or otherwise non-public "
                "address; give a URL on a public host."
            ),
            code="url_forbidden",
            field="source_url",
        )


def _check_output_format(output_format: str) -> str:
    if output_format not in contract.OUTPUT_FORMATS:
        raise InvalidSplitRequest(
            _("“%(value)s” is not a valid choice of output format; use one of: %(formats)s."),
            code="bad_format",
            field="output_format",
            params={
                "value": _shown(output_format),
                "formats": ", ".join(contract.OUTPUT_FORMATS),
            },
        )
    return output_format


def _size(file: File) -> int | None:
    """The file's size in bytes, or None when it cannot be told without reading it."""
    try:
        return int(file.size)
    except (AttributeError, TypeError, ValueError, OSError):
        return None


def max_upload_bytes() -> int:
    """``MAX_UPLOAD_BYTES``: the largest audio upload accepted, in bytes."""
    return int(get_setting("MAX_UPLOAD_BYTES"))


def file_too_large(size: int | None, limit: int | None = None) -> FileTooLargeError:
    """The refusal of audio over ``limit`` (default ``MAX_UPLOAD_BYTES``); ``size`` None
    when it was cut off while streaming in (its full size is then unknown)."""
    limit = max_upload_bytes() if limit is None else limit
    if size is None:
        return FileTooLargeError(
            _(
                "The file is too large; the largest accepted upload is %(limit)s "
                "(MAX_UPLOAD_BYTES)."
            ),
            code="too_large",
            field="audio",
            params={"limit": filesizeformat(limit)},
        )
    return FileTooLargeError(
        _("The file is %(size)s; the largest accepted upload is %(limit)s (MAX_UPLOAD_BYTES)."),
        code="too_large",
        field="audio",
        params={"size": filesizeformat(size), "limit": filesizeformat(limit)},
    )


def _seconds(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def _check_limits(info: AudioInfo) -> None:
    """Sample rate, channels and duration within the settings' bounds."""
    low, high = int(get_setting("MIN_SAMPLE_RATE")), int(get_setting("MAX_SAMPLE_RATE"))
    if not low <= info.sample_rate <= high:
        raise InvalidSplitRequest(
            _("The audio's sample rate is %(rate)d Hz; accepted rates are %(low)d-%(high)d Hz."),
            code="sample_rate",
            field="audio",
            params={"rate": info.sample_rate, "low": low, "high": high},
        )
    most = int(get_setting("MAX_CHANNELS"))
    if info.channels > most:
        raise InvalidSplitRequest(
            _("The audio has %(channels)d channels; at most %(most)d are accepted."),
            code="channels",
            field="audio",
            params={"channels": info.channels, "most": most},
        )
    longest = float(get_setting("MAX_DURATION_SECONDS"))
    if info.duration > longest:
        raise InvalidSplitRequest(
            _(
                "The audio lasts %(duration)s s; the longest accepted is %(limit)s s "
                "(MAX_DURATION_SECONDS)."
            ),
            code="too_long",
            field="audio",
            params={"duration": _seconds(info.duration), "limit": _seconds(longest)},
        )


def _check_length(file: File, info: AudioInfo, size: int | None) -> None:
    """The length the header claims must fit the file (see :mod:`.engines.plausibility`)."""
    reason = length_problem(file, info, size)
    if reason is not None:
        raise InvalidAudioError(
            _(
                "The file's header claims %(duration)s s of audio, which the file cannot "
                "hold (%(reason)s); it is damaged or forged."
            ),
            code="implausible",
            field="audio",
            params={"duration": _seconds(info.duration), "reason": reason},
        )


def _check_audio(file: File) -> AudioInfo:
    size = _size(file)
    if size == 0:
        raise InvalidAudioError(_("The file is empty."), code="empty", field="audio")
    if size is not None and size > max_upload_bytes():
        raise file_too_large(size)
    try:
        info = probe(file)
    except AudioDecodeError as exc:
        raise InvalidAudioError(
            _(
                "This file is not audio that can be decoded (WAV, FLAC, OGG or MP3), "
                "or it is corrupt: %(reason)s"
            ),
            code="not_audio",
            field="audio",
            params={"reason": str(exc)},
        ) from exc
    finally:
        file.seek(0)
    _check_limits(info)
    _check_length(file, info, size)
    return info


def _max_length(field_name: str) -> int:
    """The length the job's column stores (``SplitJob.<field_name>``)."""
    return int(getattr(SplitJob._meta.get_field(field_name), "max_length", None) or 255)


def clean_filename(name: str) -> str:
    """The last part of a path or URL path, cut to what ``original_filename`` stores."""
    return posixpath.basename(name.replace("\\", "/"))[: _max_length("original_filename")]


def validate_split_request(
    audio: File | None = None,
    *,
    url: str | None = None,
    stem_model: str | None = None,
    output_format: str | None = None,
    backend: str | None = None,
) -> ValidSplitRequest:
    """Check a request to split; return what a job is created from.

    ``audio`` is an open Django ``File`` (an ``UploadedFile`` is one) or ``None``
    when ``url`` is given instead. ``stem_model`` may be an alias (``4s``/``6s``);
    the answer holds the name the backend serves. ``None`` means the default of
    ``stem_model`` (``DEFAULT_MODEL`` or the backend's), ``output_format``
    (``OUTPUT_FORMAT``) and ``backend`` (``BACKEND``).

    The cheap checks run first, in a fixed order (source, URL syntax, model,
    format, then the URL's addresses or the audio: empty, size, decodable, sample
    rate, channels, duration, length plausible), so a request is refused for the
    same reason wherever it comes from, and a name is resolved or a file decoded
    only once it is the last thing left to check. Raises
    :class:`InvalidSplitRequest` (a ``ValueError``); a misconfigured backend raises
    its ``ConfigurationError`` instead.
    """
    _check_source(audio, url)
    backend_name = backend or str(get_setting("BACKEND"))
    splitter = get_backend(backend_name)
    if url is not None:
        url = _check_url(splitter, url)
    model = _check_model(splitter, stem_model or default_model(backend_name))
    fmt = _check_output_format(output_format or str(get_setting("OUTPUT_FORMAT")))
    if url is not None:
        _check_url_address(url)
        return ValidSplitRequest(
            backend=backend_name,
            stem_model=model,
            output_format=fmt,
            filename=clean_filename(url.split("?", 1)[0]),
            url=url,
        )
    assert audio is not None  # _check_source refused neither-nor
    info = _check_audio(audio)
    return ValidSplitRequest(
        backend=backend_name,
        stem_model=model,
        output_format=fmt,
        filename=clean_filename(str(audio.name or "audio")) or "audio",
        file=audio,
        audio=info,
    )
