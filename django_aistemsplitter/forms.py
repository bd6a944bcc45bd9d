"""Validation of a split request, shared by the admin add form and the REST API.

Every check that decides whether a request may become a job lives here, once:
the upload (present, not empty, under ``MAX_UPLOAD_BYTES``, decodable audio), the
URL alternative, and the model (one the configured backend serves). The admin's
:class:`SplitJobAddForm` uses these validators as form field validators; the API's
serializer fields use the very same functions (DRF turns Django's
``ValidationError`` into a 400 answer), so the two can never disagree.
"""

from __future__ import annotations

import inspect
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.engines.audio import AudioInfo, probe
from django_aistemsplitter.exceptions import AudioDecodeError
from django_aistemsplitter.models import OutputFormat, SplitJob

__all__ = [
    "SplitJobAddForm",
    "SplitRequestForm",
    "clean_split_source",
    "default_model",
    "model_choices",
    "validate_audio_file",
    "validate_audio_upload",
    "validate_source_for_backend",
    "validate_stem_model",
]


def validate_audio_upload(upload: UploadedFile) -> AudioInfo:
    """Check an uploaded file is non-empty, small enough and decodable; return its info.

    Raises :class:`~django.core.exceptions.ValidationError` whose message says why
    (code ``empty``, ``too_large`` or ``not_audio``).
    """
    size = getattr(upload, "size", None)
    if not size:
        raise ValidationError(_("The file is empty."), code="empty")
    limit = int(get_setting("MAX_UPLOAD_BYTES"))
    if size > limit:
        raise ValidationError(
            _("The file is %(size)s; the largest accepted upload is %(limit)s."),
            code="too_large",
            params={"size": filesizeformat(size), "limit": filesizeformat(limit)},
        )
    try:
        return probe(upload)
    except AudioDecodeError as exc:
        raise ValidationError(
            _(
                "This file is not audio that can be decoded (WAV, FLAC, OGG or MP3), "
                "or it is corrupt: %(reason)s"
            ),
            code="not_audio",
            params={"reason": str(exc)},
        ) from exc
    finally:
        if hasattr(upload, "seek"):
            upload.seek(0)


def validate_audio_file(upload: Any) -> None:
    """:func:`validate_audio_upload` as a field validator (returns nothing)."""
    validate_audio_upload(upload)


def available_models(backend: str | None = None) -> list[str]:
    from django_aistemsplitter import services

    return list(services.available_models(backend))


def default_model() -> str:
    from django_aistemsplitter import services

    return str(services.default_model())


def model_choices() -> list[tuple[str, str]]:
    """``(value, label)`` pairs of the models the configured backend serves."""
    return [(name, name) for name in available_models()]


def validate_stem_model(name: str) -> None:
    """Refuse a model the configured backend does not serve (code ``unknown_model``)."""
    models = available_models()
    if name not in models:
        raise ValidationError(
            _("Unknown model %(model)s; this backend serves: %(models)s."),
            code="unknown_model",
            params={"model": repr(name), "models": ", ".join(models) or "-"},
        )


def clean_split_source(audio: Any, source_url: str | None) -> None:
    """Exactly one of an uploaded file or a URL (code ``source``)."""
    if audio and source_url:
        raise ValidationError(_("Give either an audio file or a URL, not both."), code="source")
    if not audio and not source_url:
        raise ValidationError(_("Upload an audio file or give its URL."), code="source")


def validate_source_for_backend(source_url: str | None, backend: str | None = None) -> None:
    """A URL input needs a backend that fetches it (a remote one; code ``url_unsupported``)."""
    if not source_url:
        return
    from django_aistemsplitter.backends import get_backend

    if not get_backend(backend).accepts_urls:
        raise ValidationError(
            _(
                "The configured backend separates uploaded audio only; upload the file "
                "instead of giving a URL."
            ),
            code="url_unsupported",
        )


def service_error_message(exc: Exception) -> str:
    """A user-facing sentence for an error raised by ``services.split``."""
    return str(exc) or exc.__class__.__name__


#: ``assume_scheme`` exists from Django 5.0 (silences its https-default warning).
_URL_FIELD_OPTIONS: dict[str, Any] = (
    {"assume_scheme": "https"}
    if "assume_scheme" in inspect.signature(forms.URLField.__init__).parameters
    else {}
)


class AudioUploadField(forms.FileField):
    """A file field that only accepts decodable audio within the size limit."""

    default_validators = [validate_audio_file]
    default_error_messages = {"empty": _("The file is empty.")}
    widget = forms.ClearableFileInput(attrs={"accept": "audio/*"})


class SplitRequestForm(forms.Form):
    """Audio (file or URL), model and output format: one split request."""

    audio = AudioUploadField(
        label=_("Audio file"),
        required=False,
        help_text=_("WAV, FLAC, OGG or MP3."),
    )
    source_url = forms.URLField(
        label=_("or audio URL"),
        required=False,
        max_length=2000,
        **_URL_FIELD_OPTIONS,
        help_text=_("A public http(s) URL the backend fetches the audio from."),
    )
    stem_model = forms.ChoiceField(label=_("Model"), choices=model_choices)
    output_format = forms.ChoiceField(
        label=_("Output format"), choices=OutputFormat.choices, initial=OutputFormat.WAV
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "stem_model" in self.fields and not self.is_bound:
            try:
                self.fields["stem_model"].initial = default_model()
            except Exception:
                self.fields["stem_model"].initial = None
        fmt = get_setting("OUTPUT_FORMAT")
        if "output_format" in self.fields and fmt in OutputFormat.values:
            self.fields["output_format"].initial = fmt

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "audio" in self.errors:
            return cleaned
        try:
            clean_split_source(cleaned.get("audio"), cleaned.get("source_url"))
            validate_source_for_backend(cleaned.get("source_url"))
        except ValidationError as exc:
            self.add_error(None, exc)
        return cleaned


class SplitJobAddForm(SplitRequestForm, forms.ModelForm):
    """The admin's add form: the request fields of :class:`SplitRequestForm`.

    It is a ``ModelForm`` only because the admin wants one; the job itself is
    created by ``services.split`` (see ``SplitJobAdmin.save_model``), never by
    ``form.save()``.
    """

    class Meta:
        model = SplitJob
        fields: tuple[str, ...] = ()

    def _post_clean(self) -> None:
        # Nothing of the instance is validated or built here: services.split does it.
        return None
