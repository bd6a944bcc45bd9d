"""The form of a split request, used by the admin's add view.

The form only reads the request (a file or a URL, a model, an output format);
whether it may become a job is decided by
:func:`django_aistemsplitter.validation.validate_split_request`, the one place
that holds those rules for every entry point. :meth:`SplitRequestForm.clean`
calls it and shows its refusal as an error on the field at fault; the accepted
request is left in ``cleaned_data["split_request"]`` for
:func:`django_aistemsplitter.services.create_split`, so the audio is decoded
only once.

The audio comes one of three ways: a file in the form's own body (the plain
multipart post, which works without scripts), a URL, or ``upload``: the id of
a direct-upload ticket (:mod:`django_aistemsplitter.tickets`) whose file a
script already sent straight to where it is kept, so the Django request that
creates the job carries a few hundred bytes, not the audio. An upload is
redeemed in :meth:`SplitRequestForm.clean` (the one call that validates it and
creates the job, under the ticket's lock), and its refusals are shown like any
other: on the field at fault.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from django_aistemsplitter import tickets
from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.exceptions import AiStemSplitterError
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


#: Words the upload script shows, translated here so the script needs no catalog.
SCRIPT_MESSAGES = {
    "data-aiss-msg-ticket": _("Preparing the upload…"),
    "data-aiss-msg-uploading": _("Uploading: %(done)s of %(total)s MB"),
    "data-aiss-msg-uploaded": _("Uploaded; starting the split…"),
    "data-aiss-msg-failed": _("The upload failed: %(reason)s. Submit again to retry."),
    "data-aiss-msg-network": _("the connection was lost"),
}


class SplitRequestForm(forms.Form):
    """Audio (file, URL or direct upload), model and output format: one split request.

    ``upload_refusal`` is set (on a subclass, by the view) when the upload was
    refused while it streamed in (:mod:`django_aistemsplitter.uploads`): the file
    is then missing from the request, and the form reports that refusal instead
    of judging what is left.

    ``upload_owner`` (the requesting user) and ``ticket_url`` (where the script
    asks for a ticket) are set the same way by a view that offers direct uploads.
    With an ``upload`` the job is created by :meth:`clean` (a ticket is redeemed
    exactly once, under its lock) and left in ``cleaned_data["job"]``; otherwise
    the accepted request is left in ``cleaned_data["split_request"]``.
    """

    upload_refusal: InvalidSplitRequest | None = None
    upload_owner: Any = None
    ticket_url: str = ""

    audio = forms.FileField(
        label=_("Audio file"),
        required=False,
        allow_empty_file=True,  # "The file is empty." comes from the validation path
        widget=forms.ClearableFileInput(attrs={"accept": "audio/*"}),
        help_text=_("WAV, FLAC, OGG or MP3."),
    )
    upload = forms.CharField(
        required=False,
        max_length=64,
        widget=forms.HiddenInput(attrs={"data-aiss-upload-id": ""}),
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
        if self.ticket_url and "audio" in self.fields:
            # The script (Media below) finds the file input by this attribute; without
            # scripts nothing reads it and the file is posted with the form.
            attrs = self.fields["audio"].widget.attrs
            attrs["data-aiss-ticket-url"] = self.ticket_url
            attrs.update({key: str(text) for key, text in SCRIPT_MESSAGES.items()})

    @property
    def media(self) -> forms.Media:
        media = super().media
        if self.ticket_url:
            media += forms.Media(js=["aistemsplitter/admin/direct_upload.js"])
        return media

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
        if cleaned.get("upload"):
            self._redeem(cleaned)
            return cleaned
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

    def _redeem(self, cleaned: dict[str, Any]) -> None:
        """Create the job of the direct upload ``cleaned["upload"]``, or say why not."""
        if cleaned.get("audio") or cleaned.get("source_url"):
            self._refuse(
                InvalidSplitRequest(
                    _("Give one of an audio file, a URL or an upload, not more."),
                    code="source",
                )
            )
            return
        try:
            cleaned["job"] = tickets.redeem(
                cleaned["upload"],
                owner=self.upload_owner,
                stem_model=cleaned.get("stem_model") or None,
                output_format=cleaned.get("output_format") or None,
            )
        except InvalidSplitRequest as exc:
            if exc.field in ("upload", "audio"):
                # The ticket cannot be used again: the next submit must send a new file.
                posted: Any = self.data  # a QueryDict, immutable as posted
                data = posted.copy()
                data["upload"] = ""
                self.data = data
            self._refuse(exc)
        except (AiStemSplitterError, OSError) as exc:
            # Reading the upload back or storing the job failed: say so, create nothing.
            message = _("The split was not started: %(reason)s")
            reason = service_error_message(exc)
            self.add_error(None, ValidationError(message, params={"reason": reason}))

    def _refuse(self, exc: InvalidSplitRequest) -> None:
        """Show a refusal of the validation path as an error on the field at fault.

        A refused ``upload`` is shown on the file input: the hidden id is not
        something the user sees, the file they chose is.
        """
        name = "audio" if exc.field == "upload" and "audio" in self.fields else exc.field
        field = self.fields.get(name or "")
        if isinstance(field, DecidedChoiceField):
            self.add_error(name, field.refusal(exc))
        else:
            error = ValidationError(exc.message, code=exc.code, params=exc.params)
            self.add_error(name if field is not None else None, error)


class SplitJobAddForm(SplitRequestForm, forms.ModelForm):
    """The admin's add form: the request fields of :class:`SplitRequestForm`.

    It is a ``ModelForm`` only because the admin wants one; the job itself is
    created by ``services.create_split`` from ``cleaned_data["split_request"]``
    (see the admin's ``save_model``), or for a direct upload by
    ``tickets.redeem`` in :meth:`clean` (``cleaned_data["job"]``), never by
    ``form.save()``.
    """

    class Meta:
        model = SplitJob
        fields: tuple[str, ...] = ()

    def _post_clean(self) -> None:
        # Nothing of the instance is validated or built here: services.create_split does it.
        return None
