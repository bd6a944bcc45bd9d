"""Admin for split jobs: upload and split, watch progress, listen to stems, act on jobs.

* The add form uploads audio (or names a URL), picks a model the configured
  backend serves and an output format; saving starts the split through
  :func:`django_aistemsplitter.services.split`. Validation is shared with the
  API (:mod:`django_aistemsplitter.forms`).
* The change view is read-only: mirrored remote state is never edited by hand.
  It plays the source and every stem (served through admin-only URLs, so any
  storage works, private buckets included), draws their waveforms and polls a
  small JSON endpoint while the job runs.
* Secrets (API key, webhook secret) are never rendered; the idempotency key is
  not shown.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.template.defaultfilters import filesizeformat
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from django_aistemsplitter import contract
from django_aistemsplitter.exceptions import AiStemSplitterError
from django_aistemsplitter.forms import SplitJobAddForm, service_error_message
from django_aistemsplitter.models import (
    RETRYABLE,
    TERMINAL,
    SplitJob,
    SplitStatus,
    Stem,
    WebhookEvent,
)
from django_aistemsplitter.waveform import job_audio_svg, stem_svg

#: Badge colour of each status (text is always shown too: colour is never the only cue).
STATUS_COLOURS: dict[str, str] = {
    "pending": "#6c757d",
    "submitted": "#0d6efd",
    "processing": "#0d6efd",
    "downloading": "#6f42c1",
    "succeeded": "#198754",
    "failed": "#dc3545",
    "cancelled": "#856404",
}

_SERVICE_ERRORS = (AiStemSplitterError, ValueError, OSError)


def status_badge_html(job: SplitJob) -> SafeString:
    return format_html(
        '<span class="aiss-badge aiss-status-{}" data-aiss-badge style="background:{}">{}</span>',
        job.status,
        STATUS_COLOURS.get(job.status, "#6c757d"),
        job.get_status_display(),
    )


def progress_html(job: SplitJob) -> SafeString:
    percent = round(max(0.0, min(1.0, job.progress or 0.0)) * 100)
    if job.status == SplitStatus.SUCCEEDED:
        percent = 100
    return format_html(
        '<span class="aiss-progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" '
        'aria-valuenow="{}" data-aiss-progress><span class="aiss-progress-bar" style="width:{}%">'
        '</span><span class="aiss-progress-label">{}%</span></span>',
        percent,
        percent,
        percent,
    )


def _admin_url(name: str, *args: Any) -> str:
    return reverse(f"admin:aistemsplitter_splitjob_{name}", args=args)


class ReadOnlyInline(admin.TabularInline):
    """Shown with the job, never added, changed or deleted by hand."""

    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Whoever may see the job may see its stems and events.
        opts = SplitJob._meta
        return request.user.has_perm(f"{opts.app_label}.view_{opts.model_name}") or (
            request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")
        )


class StemInline(ReadOnlyInline):
    model = Stem
    verbose_name_plural = _("stems")
    fields = (
        "name",
        "player",
        "waveform",
        "download",
        "size_display",
        "duration_seconds",
        "audio_format",
        "sha256_short",
    )
    readonly_fields = fields

    @admin.display(description=_("audio"))
    def audio_format(self, stem: Stem) -> str:
        """One compact column ("44.1 kHz · 2 ch · WAV") keeps the row inside the page."""
        parts = []
        if stem.sample_rate:
            parts.append(f"{stem.sample_rate / 1000:g} kHz")
        if stem.channels:
            parts.append(f"{stem.channels} ch")
        if stem.format:
            parts.append(stem.format.upper())
        return " · ".join(parts) or "-"

    @admin.display(description=_("listen"))
    def player(self, stem: Stem) -> str:
        if not stem.file:
            return "-"
        return format_html(
            '<audio controls preload="metadata" class="aiss-player" data-stem="{}" src="{}">'
            "</audio>",
            stem.name,
            _admin_url("stem", stem.job_id, stem.name),
        )

    @admin.display(description=_("waveform"))
    def waveform(self, stem: Stem) -> str:
        if not stem.file:
            return "-"
        return format_html(
            '<img class="aiss-waveform" loading="lazy" width="300" height="48" alt="{}" src="{}">',
            gettext("waveform of %(name)s") % {"name": stem.name},
            _admin_url("stem_waveform", stem.job_id, stem.name),
        )

    @admin.display(description=_("download"))
    def download(self, stem: Stem) -> str:
        if not stem.file:
            return "-"
        return format_html(
            '<a href="{}?download=1" download>{}</a>',
            _admin_url("stem", stem.job_id, stem.name),
            gettext("Download"),
        )

    @admin.display(description=_("SHA-256"))
    def sha256_short(self, stem: Stem) -> str:
        if not stem.sha256:
            return "-"
        return format_html('<code title="{}">{}…</code>', stem.sha256, stem.sha256[:12])

    @admin.display(description=_("size"))
    def size_display(self, stem: Stem) -> str:
        return filesizeformat(stem.size) if stem.size is not None else "-"


class WebhookEventInline(ReadOnlyInline):
    model = WebhookEvent
    fk_name = "job"
    fields = ("type", "event_id", "remote_status", "outcome", "deliveries", "received_at")
    readonly_fields = fields
    verbose_name_plural = _("webhook events")


class _DistinctValuesFilter(admin.SimpleListFilter):
    """The distinct values of one column, as filter choices."""

    field_name = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        values = SplitJob.objects.order_by().values_list(self.field_name, flat=True).distinct()
        return [(v, v) for v in sorted(v for v in values if v)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value:
            return queryset.filter(**{self.field_name: value})
        return queryset


class ModelFilter(_DistinctValuesFilter):
    title = _("model")
    parameter_name = "model"
    field_name = "stem_model"


class BackendFilter(_DistinctValuesFilter):
    title = _("backend")
    parameter_name = "backend"
    field_name = "backend"


@admin.register(SplitJob)
class SplitJobAdmin(admin.ModelAdmin):
    add_form = SplitJobAddForm
    list_display = (
        "display_name_column",
        "status_column",
        "progress_column",
        "stem_model",
        "duration_column",
        "cost_column",
        "owner",
        "created_at",
    )
    list_display_links = ("display_name_column",)
    list_filter = ("status", ModelFilter, BackendFilter, "output_format")
    search_fields = ("original_filename", "remote_id", "source_url")
    date_hierarchy = "created_at"
    list_select_related = ("owner",)
    ordering = ("-created_at",)
    inlines = (StemInline, WebhookEventInline)
    actions = ("split_again", "retry_failed", "cancel_jobs", "redownload_stems")
    add_fieldsets = ((None, {"fields": ("audio", "source_url", "stem_model", "output_format")}),)
    change_fieldsets = (
        (
            _("Source"),
            {"fields": ("display_name", "source_audio", "source_url", "source_link", "owner")},
        ),
        (
            _("Split"),
            {
                "fields": (
                    "status_panel",
                    "stem_model",
                    "output_format",
                    "backend",
                    "remote_id",
                    "attempts",
                    "error_code",
                    "error_message",
                )
            },
        ),
        (_("Cost"), {"fields": ("duration_seconds", "credits_used", "estimated_cost")}),
        (
            _("Dates"),
            {"fields": ("created_at", "updated_at", "submitted_at", "finished_at")},
        ),
        (_("Metadata"), {"classes": ("collapse",), "fields": ("metadata_display",)}),
    )

    class Media:
        css = {"all": ("aistemsplitter/admin/splitjob.css",)}
        js = ("aistemsplitter/admin/split_status.js",)

    # --- forms and fields -------------------------------------------------------

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None:
            return self.change_fieldsets
        from django_aistemsplitter.backends import get_backend

        if get_backend().accepts_urls:
            return self.add_fieldsets
        # An in-process backend separates uploads only: do not offer a URL field.
        return [
            (name, {**opts, "fields": [f for f in opts["fields"] if f != "source_url"]})
            for name, opts in self.add_fieldsets
        ]

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Saving always shows the new job, so "continue editing" would mean the same.
        extra_context = {**(extra_context or {}), "show_save_and_continue": False}
        return super().add_view(request, form_url, extra_context)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return [name for _, opts in self.change_fieldsets for name in opts["fields"]]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change=change, **kwargs)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # Every field of an existing job is read-only: no save buttons.
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        return self.inlines if obj is not None else ()

    def get_queryset(self, request: HttpRequest) -> QuerySet[SplitJob]:
        return super().get_queryset(request).select_related("owner", "content_type")

    # --- add: start the split --------------------------------------------------

    def save_model(
        self, request: HttpRequest, obj: SplitJob, form: ModelForm, change: bool
    ) -> None:
        if change:
            return  # every field of a job is read-only
        from django_aistemsplitter import services

        data = form.cleaned_data
        try:
            job = services.split(
                data.get("audio") or None,
                url=data.get("source_url") or None,
                stem_model=data["stem_model"],
                output_format=data["output_format"],
                owner=request.user,
            )
        except _SERVICE_ERRORS as exc:
            # The form validated what services.split validates; this is a race or a
            # backend refusal: say so, create nothing (the job row is not saved).
            obj._aiss_error = service_error_message(exc)  # type: ignore[attr-defined]
            return
        obj.pk = job.pk
        obj._state.adding = False
        obj.refresh_from_db()

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if obj.pk is None:
            return None
        return super().log_addition(request, obj, message)

    def response_add(self, request: HttpRequest, obj: Any, post_url_continue: Any = None) -> Any:
        error = getattr(obj, "_aiss_error", None)
        if error:
            self.message_user(
                request, gettext("The split was not started: %s") % error, messages.ERROR
            )
            return HttpResponseRedirect(request.path)
        self.message_user(
            request,
            gettext("Split of “%(name)s” started with model %(model)s.")
            % {"name": obj.display_name, "model": obj.stem_model},
            messages.SUCCESS,
        )
        if "_addanother" in request.POST:
            return HttpResponseRedirect(request.path)
        return HttpResponseRedirect(_admin_url("change", obj.pk))

    # --- columns ----------------------------------------------------------------

    @admin.display(description=_("file"), ordering="original_filename")
    def display_name_column(self, job: SplitJob) -> str:
        return job.display_name

    @admin.display(description=_("status"), ordering="status")
    def status_column(self, job: SplitJob) -> str:
        return status_badge_html(job)

    @admin.display(description=_("progress"), ordering="progress")
    def progress_column(self, job: SplitJob) -> str:
        return progress_html(job)

    @admin.display(description=_("duration"), ordering="duration_seconds")
    def duration_column(self, job: SplitJob) -> str:
        if job.duration_seconds is None:
            return "-"
        minutes, seconds = divmod(round(job.duration_seconds), 60)
        return f"{minutes}:{seconds:02d}"

    @admin.display(description=_("credits / cost"), ordering="credits_used")
    def cost_column(self, job: SplitJob) -> str:
        parts = []
        if job.credits_used is not None:
            parts.append(gettext("%(n)s credits") % {"n": f"{job.credits_used:g}"})
        if job.estimated_cost is not None:
            parts.append(f"${job.estimated_cost:.4f}")
        return " / ".join(parts) or "-"

    # --- change view fields -------------------------------------------------------

    @admin.display(description=_("file"))
    def display_name(self, job: SplitJob) -> str:
        return job.display_name

    @admin.display(description=_("source audio"))
    def source_audio(self, job: SplitJob) -> str:
        if not job.audio:
            return "-"
        url = _admin_url("source", job.pk)
        return format_html(
            '<div class="aiss-media"><audio controls preload="metadata" class="aiss-player" '
            'data-stem="source" src="{}"></audio> <a href="{}?download=1" download>{}</a>'
            '<br><img class="aiss-waveform" loading="lazy" width="600" height="64" alt="{}" '
            'src="{}"></div>',
            url,
            url,
            gettext("Download"),
            gettext("waveform of the source audio"),
            _admin_url("source_waveform", job.pk),
        )

    @admin.display(description=_("source object"))
    def source_link(self, job: SplitJob) -> str:
        if not job.content_type_id or not job.object_id:
            return "-"
        ct = job.content_type
        label = f"{ct.app_label}.{ct.model} #{job.object_id}" if ct else job.object_id
        try:
            url = (
                reverse(f"admin:{ct.app_label}_{ct.model}_change", args=[job.object_id])
                if ct
                else ""
            )
        except NoReverseMatch:
            url = ""
        return format_html('<a href="{}">{}</a>', url, label) if url else label

    @admin.display(description=_("status"))
    def status_panel(self, job: SplitJob) -> str:
        return format_html(
            '<div class="aiss-status" data-aiss-status-url="{}" data-aiss-terminal="{}" '
            'data-aiss-status="{}" aria-live="polite">{} {} <span class="aiss-status-note" '
            "data-aiss-note></span></div>",
            _admin_url("status", job.pk),
            "1" if job.is_terminal else "0",
            job.status,
            status_badge_html(job),
            progress_html(job),
        )

    @admin.display(description=_("metadata"))
    def metadata_display(self, job: SplitJob) -> str:
        return format_html(
            "<pre>{}</pre>", json.dumps(job.metadata, indent=2, sort_keys=True, default=str)
        )

    # --- extra views ---------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("<path:object_id>/status/", wrap(self.status_view), name=f"{info}_status"),
            path("<path:object_id>/source/", wrap(self.source_view), name=f"{info}_source"),
            path(
                "<path:object_id>/source/waveform.svg",
                wrap(self.source_waveform_view),
                name=f"{info}_source_waveform",
            ),
            path(
                "<path:object_id>/stems/<str:name>/",
                wrap(self.stem_view),
                name=f"{info}_stem",
            ),
            path(
                "<path:object_id>/stems/<str:name>/waveform.svg",
                wrap(self.stem_waveform_view),
                name=f"{info}_stem_waveform",
            ),
            *super().get_urls(),
        ]

    def _job_or_404(self, request: HttpRequest, object_id: str) -> SplitJob:
        job = self.get_object(request, unquote(object_id))
        if job is None:
            raise Http404(gettext("No such split job."))
        if not self.has_view_or_change_permission(request, job):
            raise PermissionDenied
        return job

    def _stem_or_404(self, job: SplitJob, name: str) -> Stem:
        if not contract.is_safe_stem_name(name):
            raise Http404(gettext("No such stem."))
        stem = job.stems.filter(name=name).first()
        if stem is None or not stem.file:
            raise Http404(gettext("No such stem."))
        return stem

    def status_view(self, request: HttpRequest, object_id: str) -> JsonResponse:
        job = self._job_or_404(request, object_id)
        return JsonResponse(
            {
                "id": str(job.pk),
                "status": job.status,
                "status_display": str(job.get_status_display()),
                "progress": job.progress,
                "terminal": job.is_terminal,
                "error_message": job.error_message,
                "stems": job.stems.count(),
                "badge": status_badge_html(job),
                "progress_html": progress_html(job),
            }
        )

    def _file_response(self, request: HttpRequest, field_file: Any, filename: str) -> FileResponse:
        try:
            handle = field_file.open("rb")
        except (OSError, ValueError) as exc:
            raise Http404(gettext("The file is missing from storage.")) from exc
        ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        response = FileResponse(
            handle,
            as_attachment=bool(request.GET.get("download")),
            filename=filename,
            content_type=contract.CONTENT_TYPES.get(ext, "application/octet-stream"),
        )
        response["Cache-Control"] = "private, max-age=0"
        return response

    def source_view(self, request: HttpRequest, object_id: str) -> FileResponse:
        job = self._job_or_404(request, object_id)
        if not job.audio:
            raise Http404(gettext("This job has no stored source audio."))
        name = job.original_filename or (job.audio.name or "audio").rsplit("/", 1)[-1]
        return self._file_response(request, job.audio, name)

    def stem_view(self, request: HttpRequest, object_id: str, name: str) -> FileResponse:
        job = self._job_or_404(request, object_id)
        stem = self._stem_or_404(job, name)
        file_name = stem.file.name or ""
        ext = file_name.rsplit(".", 1)[-1] if "." in file_name else stem.format
        return self._file_response(request, stem.file, f"{stem.name}.{ext or 'wav'}")

    def _svg(self, svg: str) -> HttpResponse:
        response = HttpResponse(svg, content_type="image/svg+xml")
        response["Cache-Control"] = "private, max-age=3600"
        return response

    def source_waveform_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._svg(job_audio_svg(self._job_or_404(request, object_id)))

    def stem_waveform_view(self, request: HttpRequest, object_id: str, name: str) -> HttpResponse:
        job = self._job_or_404(request, object_id)
        return self._svg(stem_svg(self._stem_or_404(job, name)))

    # --- actions ---------------------------------------------------------------

    def _report(
        self, request: HttpRequest, done: int, skipped: list[str], errors: list[str], verb: str
    ) -> None:
        if done:
            self.message_user(
                request,
                ngettext("%(verb)s %(n)d job.", "%(verb)s %(n)d jobs.", done)
                % {"verb": verb, "n": done},
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                gettext("Skipped: %s") % "; ".join(skipped),
                messages.WARNING,
            )
        for error in errors:
            self.message_user(request, error, messages.ERROR)
        if not (done or skipped or errors):
            self.message_user(request, gettext("Nothing to do."), messages.INFO)

    @admin.action(description=_("Split again (new job from the same audio)"), permissions=["add"])
    def split_again(self, request: HttpRequest, queryset: QuerySet[SplitJob]) -> None:
        from django_aistemsplitter import services

        done, skipped, errors = 0, [], []
        for job in queryset:
            if not job.audio and not job.source_url:
                skipped.append(gettext("“%s” has no audio") % job.display_name)
                continue
            try:
                services.split(
                    job.audio if job.audio else None,
                    url=None if job.audio else job.source_url,
                    stem_model=job.stem_model,
                    output_format=job.output_format,
                    owner=request.user,
                    source=job.source,
                    source_field=job.source_field,
                    metadata={**job.metadata, "split_again_of": str(job.pk)},
                    backend=job.backend or None,
                )
                done += 1
            except _SERVICE_ERRORS as exc:
                errors.append(f"{job.display_name}: {service_error_message(exc)}")
        self._report(request, done, skipped, errors, gettext("Started a new split for"))

    @admin.action(description=_("Retry failed or cancelled jobs"), permissions=["change"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[SplitJob]) -> None:
        from django_aistemsplitter import services

        done, skipped, errors = 0, [], []
        for job in queryset:
            if job.status not in RETRYABLE:
                skipped.append(
                    gettext("“%(name)s” is %(status)s")
                    % {"name": job.display_name, "status": job.get_status_display()}
                )
                continue
            try:
                services.retry(job)
                done += 1
            except _SERVICE_ERRORS as exc:
                errors.append(f"{job.display_name}: {service_error_message(exc)}")
        self._report(request, done, skipped, errors, gettext("Retried"))

    @admin.action(description=_("Cancel running jobs"), permissions=["change"])
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[SplitJob]) -> None:
        from django_aistemsplitter import services

        done, skipped, errors = 0, [], []
        for job in queryset:
            if job.status in TERMINAL:
                skipped.append(
                    gettext("“%(name)s” already %(status)s")
                    % {"name": job.display_name, "status": job.get_status_display()}
                )
                continue
            try:
                if services.cancel(job):
                    done += 1
                else:
                    skipped.append(gettext("“%s” could not be cancelled") % job.display_name)
            except _SERVICE_ERRORS as exc:
                errors.append(f"{job.display_name}: {service_error_message(exc)}")
        self._report(request, done, skipped, errors, gettext("Cancelled"))

    @admin.action(description=_("Re-download stems (reconcile)"), permissions=["change"])
    def redownload_stems(self, request: HttpRequest, queryset: QuerySet[SplitJob]) -> None:
        from django_aistemsplitter import services

        done, skipped, errors = 0, [], []
        for job in queryset:
            if job.status == SplitStatus.PENDING:
                skipped.append(gettext("“%s” was not submitted yet") % job.display_name)
                continue
            try:
                services.redownload(job)
                done += 1
            except _SERVICE_ERRORS as exc:
                errors.append(f"{job.display_name}: {service_error_message(exc)}")
        self._report(request, done, skipped, errors, gettext("Queued a re-download for"))


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    """Verified deliveries, for auditing: never added or edited by hand."""

    list_display = (
        "type",
        "remote_id",
        "remote_status",
        "outcome",
        "deliveries",
        "job",
        "received_at",
    )
    list_filter = ("type", "outcome", "remote_status")
    search_fields = ("event_id", "remote_id")
    date_hierarchy = "received_at"
    list_select_related = ("job",)
    fields = (
        "event_id",
        "type",
        "remote_id",
        "remote_status",
        "job",
        "outcome",
        "deliveries",
        "received_at",
        "processed_at",
        "payload_display",
    )
    readonly_fields = fields

    @admin.display(description=_("payload"))
    def payload_display(self, event: WebhookEvent) -> str:
        return format_html(
            "<pre>{}</pre>", json.dumps(event.payload, indent=2, sort_keys=True, default=str)
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
