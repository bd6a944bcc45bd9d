"""Serializers of the split API.

They expose URLs, never storage paths (``FieldFile.name``), and never the
idempotency key or any secret. Input validation is the very code the admin's
add form runs (:mod:`django_aistemsplitter.forms`).
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from django_aistemsplitter.forms import (
    clean_split_source,
    validate_audio_file,
    validate_source_for_backend,
    validate_stem_model,
)
from django_aistemsplitter.models import OutputFormat, SplitJob, SplitStatus, Stem

URL_NAMESPACE = "aistemsplitter_api"


def _absolute(request: Any, url: str) -> str:
    return request.build_absolute_uri(url) if request is not None else url


class StemSerializer(serializers.ModelSerializer):
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
        url = reverse(f"{URL_NAMESPACE}:split-stem", args=[stem.job_id, stem.name])
        return _absolute(self.context.get("request"), url)


class SplitJobSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="This job's URL in the API.")
    filename = serializers.CharField(source="display_name", read_only=True)
    is_terminal = serializers.BooleanField(read_only=True)
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
        url = reverse(f"{URL_NAMESPACE}:split-detail", args=[job.pk])
        return _absolute(self.context.get("request"), url)


class SplitCreateSerializer(serializers.Serializer):
    """A new split: ``audio`` (multipart upload) or ``source_url`` (JSON or form)."""

    audio = serializers.FileField(
        required=False,
        allow_empty_file=True,  # validate_audio_upload says "The file is empty."
        validators=[validate_audio_file],
        help_text="The audio file (WAV, FLAC, OGG or MP3); multipart/form-data only.",
    )
    source_url = serializers.URLField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Alternatively, an http(s) URL the backend fetches (remote backends).",
    )
    stem_model = serializers.CharField(
        required=False,
        max_length=64,
        validators=[validate_stem_model],
        help_text="A model the configured backend serves; its default when omitted.",
    )
    output_format = serializers.ChoiceField(
        choices=OutputFormat.choices, required=False, help_text="Stem file format."
    )
    metadata = serializers.JSONField(
        required=False, help_text="Free-form JSON object kept with the job."
    )

    def validate_metadata(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        from django.core.exceptions import ValidationError as DjangoValidationError

        try:
            clean_split_source(attrs.get("audio"), attrs.get("source_url"))
            validate_source_for_backend(attrs.get("source_url"))
        except DjangoValidationError as exc:
            raise serializers.ValidationError(
                {api_settings.NON_FIELD_ERRORS_KEY: list(exc.messages)}
            ) from exc
        return attrs


class ErrorSerializer(serializers.Serializer):
    """The body of a 404, 409 or 429 answer (and of 401/403)."""

    detail = serializers.CharField()


class SplitValidationErrorSerializer(serializers.Serializer):
    """The body of a 400 answer to ``POST /splits/``: messages per field."""

    audio = serializers.ListField(child=serializers.CharField(), required=False)
    source_url = serializers.ListField(child=serializers.CharField(), required=False)
    stem_model = serializers.ListField(child=serializers.CharField(), required=False)
    output_format = serializers.ListField(child=serializers.CharField(), required=False)
    metadata = serializers.ListField(child=serializers.CharField(), required=False)
    non_field_errors = serializers.ListField(child=serializers.CharField(), required=False)


STATUS_VALUES = tuple(SplitStatus.values)
