"""Serializers of the split API.

They expose URLs, never storage paths (``FieldFile.name``), and never the
idempotency key or any secret. Whether a new split is valid is decided by
:func:`django_aistemsplitter.validation.validate_split_request`, the same path the
admin's add form and ``services.split`` take; the serializer only reads the
fields and reports a refusal as a 400 keyed by the field at fault.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from django_aistemsplitter.api.parsers import json_problem, loads
from django_aistemsplitter.models import (
    OutputFormat,
    SplitJob,
    SplitStatus,
    Stem,
    UploadDestination,
)
from django_aistemsplitter.pricing import engine_seconds, runs_in_process
from django_aistemsplitter.validation import InvalidSplitRequest, validate_split_request

URL_NAMESPACE = "aistemsplitter_api"


def _absolute(request: Any, url: str) -> str:
    return request.build_absolute_uri(url) if request is not None else url


#: Stand-ins reversed once per request; each must match its URL pattern and need no quoting.
_JOB_MARK = "00000000-0000-4000-8000-0000000a155e"
_NAME_MARK = "aiss-stem-name-mark"
#: Values spliced in as they are: ``reverse()`` would leave them unquoted too, and
#: none of them is a ``.``/``..`` path segment that ``build_absolute_uri`` resolves.
_PLAIN_JOB = re.compile(r"[0-9a-fA-F-]{32,36}")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]+")
#: Where :func:`_urls` keeps its templates in a serializer's context.
_URLS_KEY = "_aistemsplitter_urls"


class _URLs:
    """The job and stem URLs of one request, from one ``reverse()`` per route.

    A list page used to reverse and absolutize a URL per job and per stem (five
    of each per job): about a sixth of a list request. Here each route
    is reversed once with stand-in arguments, made absolute once, and split
    around the stand-ins; a value that could be quoted or resolved differently
    from a plain id or name takes the old path, so the output is the same.
    """

    def __init__(self, request: Any) -> None:
        self.request = request
        detail = _absolute(request, reverse(f"{URL_NAMESPACE}:split-detail", args=[_JOB_MARK]))
        stem = _absolute(
            request, reverse(f"{URL_NAMESPACE}:split-stem", args=[_JOB_MARK, _NAME_MARK])
        )
        self.detail = _split_once(detail, _JOB_MARK)
        job_part = _split_once(stem, _JOB_MARK)
        name_part = _split_once(job_part[1], _NAME_MARK) if job_part else None
        self.stem = (job_part[0], *name_part) if job_part and name_part else None

    def job(self, pk: Any) -> str:
        text = str(pk)
        if self.detail is None or not _PLAIN_JOB.fullmatch(text):
            return _absolute(self.request, reverse(f"{URL_NAMESPACE}:split-detail", args=[pk]))
        return f"{self.detail[0]}{text}{self.detail[1]}"

    def stem_url(self, job_pk: Any, name: str) -> str:
        text = str(job_pk)
        if self.stem is None or not (_PLAIN_JOB.fullmatch(text) and _PLAIN_NAME.fullmatch(name)):
            url = reverse(f"{URL_NAMESPACE}:split-stem", args=[job_pk, name])
            return _absolute(self.request, url)
        return f"{self.stem[0]}{text}{self.stem[1]}{name}{self.stem[2]}"


def _split_once(url: str, mark: str) -> tuple[str, str] | None:
    before, found, after = url.partition(mark)
    return (before, after) if found and mark not in after else None


def _urls(context: Mapping[str, Any]) -> _URLs:
    """The request's URL templates, built on first use and kept in the serializer context
    (shared by a list's rows and their stems; rebuilt if the context moves to another
    request)."""
    request = context.get("request")
    urls = context.get(_URLS_KEY)
    if not isinstance(urls, _URLs) or urls.request is not request:
        urls = _URLs(request)
        if isinstance(context, MutableMapping):
            context[_URLS_KEY] = urls
    return urls


class _BuiltOnceModelSerializer(serializers.ModelSerializer):
    """A model serializer that introspects its model once per class, not once per use.

    ``ModelSerializer.get_fields`` maps every model field to a serializer field
    (choices, validators, lengths) each time a serializer is used: about 3 ms of
    every list page. What it builds depends on the class's ``Meta`` and the model
    only, so the first result is kept and each use gets a deep copy, the way DRF
    already copies declared fields (a copy is what gets bound, never the original).
    """

    def get_fields(self) -> dict[str, serializers.Field]:
        cls = type(self)
        built = cls.__dict__.get("_built_fields")
        if built is None:
            built = super().get_fields()
            cls._built_fields = built  # type: ignore[attr-defined]
        return copy.deepcopy(built)


class StemSerializer(_BuiltOnceModelSerializer):
    url = serializers.SerializerMethodField(help_text="Download URL of the stem (authenticated).")

    class Meta:
        model = Stem
        fields = (
            "name",
            "url",
            "format",
            "size",
            "duration_seconds",
            "sha256",
            "sample_rate",
            "channels",
        )
        read_only_fields = fields

    @extend_schema_field(serializers.URLField())
    def get_url(self, stem: Stem) -> str:
        return _urls(self.context).stem_url(stem.job_id, stem.name)


class SplitJobSerializer(_BuiltOnceModelSerializer):
    url = serializers.SerializerMethodField(help_text="This job's URL in the API.")
    filename = serializers.CharField(source="display_name", read_only=True)
    is_terminal = serializers.BooleanField(read_only=True)
    estimated_cost = serializers.SerializerMethodField(
        help_text="Estimated price in USD of a hosted split; null for in-process splits."
    )
    engine_seconds = serializers.SerializerMethodField(
        help_text="Engine time of an in-process split (no money is spent); null otherwise."
    )
    stems = StemSerializer(many=True, read_only=True)

    class Meta:
        model = SplitJob
        fields = (
            "id",
            "url",
            "filename",
            "source_url",
            "stem_model",
            "output_format",
            "backend",
            "remote_id",
            "status",
            "is_terminal",
            "progress",
            "error_code",
            "error_message",
            "duration_seconds",
            "credits_used",
            "estimated_cost",
            "engine_seconds",
            "attempts",
            "metadata",
            "created_at",
            "updated_at",
            "submitted_at",
            "finished_at",
            "stems",
        )
        read_only_fields = fields

    @extend_schema_field(serializers.URLField())
    def get_url(self, job: SplitJob) -> str:
        return _urls(self.context).job(job.pk)

    @extend_schema_field(serializers.DecimalField(max_digits=12, decimal_places=4, allow_null=True))
    def get_estimated_cost(self, job: SplitJob) -> str | None:
        if runs_in_process(job) or job.estimated_cost is None:
            return None
        return f"{job.estimated_cost:.4f}"

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_engine_seconds(self, job: SplitJob) -> float | None:
        return engine_seconds(job) if runs_in_process(job) else None


@extend_schema_field(OpenApiTypes.URI)
class _URLInputField(serializers.CharField):
    """A URL as typed; whether it is an acceptable one is the validation path's call."""


class _DecidedChoiceField(serializers.ChoiceField):
    """Documents its choices; which values are accepted is the validation path's call."""

    default_error_messages = {"invalid": "Not a valid string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return data


class _MetadataField(serializers.JSONField):
    """A JSON object that PostgreSQL's ``jsonb`` can store and the API can send back.

    Sent as JSON in a JSON body, or as a JSON string in a form or multipart body;
    either way bounded in depth, without NUL characters (``jsonb`` refuses them),
    unpaired surrogates or numbers that are not finite.
    """

    default_error_messages = {
        "invalid": "Value must be valid JSON.",
        "not_object": "Must be a JSON object.",
        "unstorable": "Cannot be stored: {reason}.",
    }

    def to_internal_value(self, data: Any) -> Any:
        if getattr(data, "is_json_string", False):
            try:
                data = loads(str(data))
            except ValueError:
                self.fail("invalid")
        if not isinstance(data, dict):
            self.fail("not_object")
        reason = json_problem(data, storable=True)
        if reason is not None:
            self.fail("unstorable", reason=reason)
        return data


class RefusalMixin:
    """Turns a refusal of the validation path into a 400 keyed by the field at fault.

    The one mapping of :class:`~django_aistemsplitter.validation.InvalidSplitRequest`
    to an API answer, shared by every serializer that reports such refusals.
    """

    def refusal(
        self, exc: InvalidSplitRequest, *, rename: dict[str, str] | None = None
    ) -> serializers.ValidationError:
        """A refusal as a 400 body keyed by the field at fault.

        ``rename`` maps the validation path's field to this request's (the audio
        of a direct upload was sent as ``upload``, not as ``audio``). A field the
        request does not have is reported under ``non_field_errors``.
        """
        key = exc.field
        if key and rename:
            key = rename.get(key, key)
        key = key if key and key in getattr(self, "fields", {}) else None
        key = key or api_settings.NON_FIELD_ERRORS_KEY
        return serializers.ValidationError({key: [str(exc)]}, code=exc.code)


class SplitCreateSerializer(RefusalMixin, serializers.Serializer):
    """A new split: ``audio`` (multipart upload), ``source_url`` (JSON or form) or
    ``upload`` (the id of a direct-upload ticket whose file has been sent).

    :meth:`validate` leaves the accepted request in
    ``validated_data["split_request"]`` for ``services.create_split``; with
    ``upload`` it only checks that nothing else was given: the view redeems the
    ticket (:func:`django_aistemsplitter.tickets.redeem`), which validates the
    uploaded file on the same path.
    """

    audio = serializers.FileField(
        required=False,
        allow_empty_file=True,  # "The file is empty." comes from the validation path
        help_text="The audio file (WAV, FLAC, OGG or MP3); multipart/form-data only.",
    )
    source_url = _URLInputField(
        required=False,
        allow_blank=True,
        help_text="Alternatively, an http(s) URL the backend fetches (remote backends).",
    )
    upload = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Alternatively, the `id` of a direct-upload ticket (`POST /splits/uploads/`) "
        "whose file has been sent; single use, its owner only, before it expires.",
    )
    stem_model = serializers.CharField(
        required=False,
        help_text="A model the configured backend serves (or its alias, e.g. 6s); "
        "its default when omitted.",
    )
    output_format = _DecidedChoiceField(
        choices=OutputFormat.choices, required=False, help_text="Stem file format."
    )
    metadata = _MetadataField(required=False, help_text="Free-form JSON object kept with the job.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("upload"):
            if attrs.get("audio") or attrs.get("source_url"):
                raise serializers.ValidationError(
                    {"upload": [_("Give one of an audio file, a URL or an upload, not more.")]},
                    code="source",
                )
            return attrs
        attrs.pop("upload", None)
        try:
            attrs["split_request"] = validate_split_request(
                attrs.get("audio") or None,
                url=attrs.get("source_url") or None,
                stem_model=attrs.get("stem_model") or None,
                output_format=attrs.get("output_format") or None,
            )
        except InvalidSplitRequest as exc:
            raise self.refusal(exc) from exc
        return attrs


class UploadTicketRequestSerializer(RefusalMixin, serializers.Serializer):
    """``POST /splits/uploads/``: the file about to be sent.

    What it may be (size within ``MAX_UPLOAD_BYTES``, a name, the user's open
    tickets) is :func:`django_aistemsplitter.tickets.open_ticket`'s call; the
    file's content is validated when the split is created.
    """

    filename = serializers.CharField(
        trim_whitespace=False, help_text="The file's name (its last path part is kept)."
    )
    size = serializers.IntegerField(help_text="The file's exact size in bytes.")
    content_type = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Its media type (e.g. audio/wav); guessed from the name when omitted.",
    )


class UploadTicketSerializer(serializers.Serializer):
    """The answer of ``POST /splits/uploads/``: where and how to send the file."""

    id = serializers.UUIDField(help_text="The ticket id: `upload` of `POST /splits/`.")
    destination = serializers.ChoiceField(
        choices=UploadDestination.choices, help_text="Where the bytes go."
    )
    url = serializers.URLField(help_text="Send the file here.")
    method = serializers.ChoiceField(
        choices=["PUT", "POST"],
        help_text="PUT: the body is the file. POST: multipart/form-data of `fields` "
        "(in order), then the file as the part named `file_field`.",
    )
    headers = serializers.DictField(
        child=serializers.CharField(), help_text="Headers to send with the file."
    )
    file_field = serializers.CharField(
        allow_blank=True, help_text="The form part of the file, for a POST."
    )
    expires_at = serializers.DateTimeField(help_text="Create the split before this.")
    max_bytes = serializers.IntegerField(help_text="The size declared; a larger file is refused.")

    def get_fields(self) -> dict[str, serializers.Field]:
        # A field called "fields" cannot be declared: it would hide Serializer.fields.
        found = super().get_fields()
        found["fields"] = serializers.DictField(
            child=serializers.CharField(), help_text="Form fields of a POST, in order."
        )
        return found


class ErrorSerializer(serializers.Serializer):
    """The body of a 404, 409 or 429 answer (and of 401/403)."""

    detail = serializers.CharField()


class UploadTicketErrorSerializer(serializers.Serializer):
    """The body of a 400 answer to ``POST /splits/uploads/``: messages per field."""

    filename = serializers.ListField(child=serializers.CharField(), required=False)
    size = serializers.ListField(child=serializers.CharField(), required=False)
    content_type = serializers.ListField(child=serializers.CharField(), required=False)
    non_field_errors = serializers.ListField(child=serializers.CharField(), required=False)


class SplitValidationErrorSerializer(serializers.Serializer):
    """The body of a 400 answer to ``POST /splits/``: messages per field."""

    audio = serializers.ListField(child=serializers.CharField(), required=False)
    source_url = serializers.ListField(child=serializers.CharField(), required=False)
    upload = serializers.ListField(child=serializers.CharField(), required=False)
    stem_model = serializers.ListField(child=serializers.CharField(), required=False)
    output_format = serializers.ListField(child=serializers.CharField(), required=False)
    metadata = serializers.ListField(child=serializers.CharField(), required=False)
    non_field_errors = serializers.ListField(child=serializers.CharField(), required=False)


STATUS_VALUES = tuple(SplitStatus.values)
