"""The form of a split request, used by the admin's add view.

The form only reads the request (a file or a URL, a model, an output format);
whether it may become a job is decided by
:func:`django_aistemsplitter.validation.validate_split_request`, the one place
that holds those rules for every entry point. :meth:`SplitRequestForm.clean`
calls it and shows its refusal as an error on the field at fault; the accepted
request is left in ``cleaned_data["split_request"]`` for
:func:`django_aistemsplitter.services.create_split`, so the audio is decoded
only once.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.models import OutputFormat, SplitJob
from django_aistemsplitter.validation import (
    InvalidSplitRequest,
    available_models,
    default_model,
    validate_split_request,
)

__all__ = [
    "SplitJobAddForm",
    "SplitRequestForm",
    "model_choices",
    "service_error_message",
]


def model_choices() -> list[tuple[str, str]]:
    """``(value, label)`` pairs of the models the configured backend serves."""
    return [(name, name) for name in available_models()]


def service_error_message(exc: Exception) -> str:
    """A user-facing sentence for an error raised by a function of ``services``."""
    return str(exc) or exc.__class__.__name__


class DecidedChoiceField(forms.ChoiceField):
    """A select whose value is judged by the validation path, not by its choices.

    The choices are what the user is offered; which values are accepted (model
    aliases such as ``6s`` too) is :func:`validate_split_request`'s decision.
    """

    def valid_value(self, value: Any) -> bool:
        return True

    def refusal(self, exc: InvalidSplitRequest) -> ValidationError:
        """A refused value in Django's own words for a select ("Select a valid choice")."""
        return ValidationError(
            self.error_messages["invalid_choice"], code=exc.code, params=exc.params
        )


class SplitRequestForm(forms.Form):
    """Audio (file or URL), model and output format: one split request.

    ``upload_refusal`` is set (on a subclass, by the view) when the upload was
    refused while it streamed in (:mod:`django_aistemsplitter.uploads`): the file
    is then missing from the request, and the form reports that refusal instead
    of judging what is left.
    """

    upload_refusal: InvalidSplitRequest | None = None

    audio = forms.FileField(
        label=_("Audio file"),
        required=False,
        allow_empty_file=True,  # "The file is empty." comes from the validation path
        widget=forms.ClearableFileInput(attrs={"accept": "audio/*"}),
        help_text=_("WAV, FLAC, OGG or MP3."),
    )
    source_url = forms.CharField(
        label=_("or audio URL"),
        required=False,
        widget=forms.URLInput,
        help_text=_("A public http(s) URL the backend fetches the audio from."),
    )
    stem_model = DecidedChoiceField(
        label=_("Model"),
        choices=model_choices,
    )
    output_format = DecidedChoiceField(
        label=_("Output format"),
        choices=OutputFormat.choices,
        initial=OutputFormat.WAV,
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
        if self.upload_refusal is not None:
            # The body was cut off at the file: the fields after it never arrived,
            # which is not the user's mistake. Say only why the upload was refused.
            self.errors.clear()
            self._refuse(self.upload_refusal)
            return cleaned
        if self.errors:
            return cleaned  # a field could not even be read
        try:
            cleaned["split_request"] = validate_split_request(
                cleaned.get("audio") or None,
                url=cleaned.get("source_url") or None,
                stem_model=cleaned.get("stem_model") or None,
                output_format=cleaned.get("output_format") or None,
            )
        except InvalidSplitRequest as exc:
            self._refuse(exc)
        return cleaned

    def _refuse(self, exc: InvalidSplitRequest) -> None:
        """Show a refusal of the validation path as an error on the field at fault."""
        field = self.fields.get(exc.field or "")
        if isinstance(field, DecidedChoiceField):
            self.add_error(exc.field, field.refusal(exc))
        else:
            error = ValidationError(exc.message, code=exc.code, params=exc.params)
            self.add_error(exc.field if field is not None else None, error)


class SplitJobAddForm(SplitRequestForm, forms.ModelForm):
    """The admin's add form: the request fields of :class:`SplitRequestForm`.

    It is a ``ModelForm`` only because the admin wants one; the job itself is
    created by ``services.create_split`` from ``cleaned_data["split_request"]``
    (see the admin's ``save_model``), never by ``form.save()``.
    """

    class Meta:
        model = SplitJob
        fields: tuple[str, ...] = ()

    def _post_clean(self) -> None:
        # Nothing of the instance is validated or built here: services.create_split does it.
        return None
