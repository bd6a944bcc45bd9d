"""Admin of split jobs: upload and split, watch progress, listen to stems, act on jobs.

* The add form uploads audio (or names a URL when the backend fetches URLs),
  picks a model the configured backend serves and an output format; saving
  starts the split through :func:`django_aistemsplitter.services.split`.
  Validation is shared with the API (:mod:`django_aistemsplitter.forms`).
  With scripts on, the chosen file goes straight to where it is kept (a
  direct-upload ticket from :mod:`.views`, the script
  ``aistemsplitter/admin/direct_upload.js``, a progress bar) and the form posts
  only the ticket's id; without scripts it posts the file as before.
* The change view is read-only: mirrored remote state is never edited by hand.
  It plays the source and every stem (see :mod:`.views`), draws their
  waveforms and polls a small JSON endpoint while the job runs.
* Secrets (API key, webhook secret) are never rendered; the idempotency key is
  not shown.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from django_aistemsplitter import services, uploads
from django_aistemsplitter.admin.actions import (
    SERVICE_ERRORS,
    cancel_jobs,
    redownload_stems,
    retry_failed,
    split_again,
)
from django_aistemsplitter.admin.display import (
    cost_text,
    engine_seconds,
    job_admin_url,
    json_html,
    progress_html,
    runs_in_process,
    status_badge_html,
)
from django_aistemsplitter.admin.filters import (
    BackendFilter,
    ModelFilter,
    job_search,
    with_date_buckets,
)
from django_aistemsplitter.admin.inlines import StemInline, WebhookEventInline
from django_aistemsplitter.admin.views import SplitJobViewsMixin
from django_aistemsplitter.backends import get_backend
from django_aistemsplitter.forms import SplitJobAddForm, service_error_message
from django_aistemsplitter.models import SplitJob
from django_aistemsplitter.paginator import EstimatingPaginator


class SplitJobAdmin(SplitJobViewsMixin):
    """Upload and split, follow a running job, listen to its stems, act on many jobs."""

    add_form = SplitJobAddForm
    list_display = (
        "display_name_column",
        "status_column",
        "duration_column",
        "cost_column",
        "owner",
        "created_at",
    )
    list_display_links = ("display_name_column",)
    # Sized for 100,000 jobs and more (see .filters): each filter, the search and the
    # date drill-down run off an index; the list is counted once, not twice.
    list_filter = ("status", ModelFilter, BackendFilter, "output_format")
    search_fields = ("=id", "=remote_id", "^original_filename")  # see get_search_results
    search_help_text = _("A job id or remote id, or the start of a file name.")
    date_hierarchy = "created_at"
    show_full_result_count = False
    paginator = EstimatingPaginator
    list_select_related = ("owner",)
    ordering = ("-created_at", "-id")
    inlines = (StemInline, WebhookEventInline)
    actions = (split_again, retry_failed, cancel_jobs, redownload_stems)
    add_fieldsets = (
        (None, {"fields": ("audio", "upload", "source_url", "stem_model", "output_format")}),
    )
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
        (
            _("Dates"),
            {"fields": ("created_at", "updated_at", "submitted_at", "finished_at")},
        ),
        (_("Metadata"), {"classes": ("collapse",), "fields": ("metadata_display",)}),
    )
    #: Shown after "Split": what the service charged, or what the engine took in process.
    remote_cost_fieldset = (
        _("Cost"),
        {"fields": ("duration_seconds", "credits_used", "estimated_cost")},
    )
    in_process_cost_fieldset = (_("Usage"), {"fields": ("duration_seconds", "engine_time")})

    class Media:
        css = {"all": ("aistemsplitter/admin/splitjob.css",)}
        js = ("aistemsplitter/admin/split_status.js",)

    # --- forms and fields -------------------------------------------------------

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None:
            return self.job_fieldsets(obj)
        if get_backend().accepts_urls:
            return self.add_fieldsets
        # An in-process backend separates uploads only: do not offer a URL field.
        return [
            (name, {**opts, "fields": [f for f in opts["fields"] if f != "source_url"]})
            for name, opts in self.add_fieldsets
        ]

    @method_decorator(csrf_exempt)
    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # An upload over MAX_UPLOAD_BYTES is refused while it streams in. The handler
        # must be in place before the CSRF check reads the form, hence exempt here
        # and protected just below (Django's "Modifying upload handlers on the fly").
        uploads.install(request)
        return self._add_view(request, form_url, extra_context)

    @method_decorator(csrf_protect)
    def _add_view(
        self, request: HttpRequest, form_url: str, extra_context: dict[str, Any] | None
    ) -> HttpResponse:
        # Saving always shows the new job, so "continue editing" would mean the same.
        extra_context = {**(extra_context or {}), "show_save_and_continue": False}
        return super().add_view(request, form_url, extra_context)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return [name for _, opts in self.job_fieldsets(obj) for name in opts["fields"]]

    def job_fieldsets(self, job: SplitJob) -> list[Any]:
        """The change view's fieldsets; a job split in process shows no dollar cost."""
        cost = self.in_process_cost_fieldset if runs_in_process(job) else self.remote_cost_fieldset
        return [*self.change_fieldsets[:2], cost, *self.change_fieldsets[2:]]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            # The user redeems their own upload tickets; the script asks for one here.
            attrs: dict[str, Any] = {
                "upload_owner": request.user,
                "ticket_url": job_admin_url("upload_ticket"),
            }
            if request.method == "POST":
                request.FILES  # noqa: B018 - parse the body now, through the upload handlers
                refused = uploads.refusal(request)
                if refused is not None:
                    attrs["upload_refusal"] = refused
            kwargs["form"] = type(self.add_form.__name__, (self.add_form,), attrs)
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
        if obj is None:
            return ()
        # Webhooks only come from a service: a job split in process has none to list.
        if runs_in_process(obj) and not obj.webhook_events.exists():
            return tuple(i for i in self.inlines if i is not WebhookEventInline)
        return self.inlines

    def get_queryset(self, request: HttpRequest) -> QuerySet[SplitJob]:
        return with_date_buckets(
            super().get_queryset(request).select_related("owner", "content_type")
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[SplitJob], search_term: str
    ) -> tuple[QuerySet[SplitJob], bool]:
        # Exact ids and file name prefixes: index lookups, never a scan of the table.
        if not search_term.strip():
            return queryset, False
        return queryset.filter(job_search(search_term)), False

    # --- add: start the split --------------------------------------------------

    def save_model(
        self, request: HttpRequest, obj: SplitJob, form: ModelForm, change: bool
    ) -> None:
        if change:
            return  # every field of a job is read-only
        job = form.cleaned_data.get("job")
        if job is not None:
            # A direct upload: the form redeemed its ticket, which created the job.
            obj.pk = job.pk
            obj._state.adding = False
            obj.refresh_from_db()
            return
        try:
            # The form's clean() validated the request (and probed the audio) once.
            job = services.create_split(form.cleaned_data["split_request"], owner=request.user)
        except SERVICE_ERRORS as exc:
            # Storing the audio or the row failed: say so, create nothing.
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
        return HttpResponseRedirect(job_admin_url("change", obj.pk))

    # --- columns ----------------------------------------------------------------

    @admin.display(description=_("file"), ordering="original_filename")
    def display_name_column(self, job: SplitJob) -> str:
        """The name, and under it the model: one column fewer, so the list fits 1280 px."""
        return format_html('{}<span class="aiss-sub">{}</span>', job.display_name, job.stem_model)

    @admin.display(description=_("status"), ordering="status")
    def status_column(self, job: SplitJob) -> str:
        """The badge, and while the job runs its progress under it (one column, not two)."""
        if job.is_terminal:
            return status_badge_html(job)
        return format_html(
            '<span class="aiss-status-cell">{}{}</span>', status_badge_html(job), progress_html(job)
        )

    @admin.display(description=_("duration"), ordering="duration_seconds")
    def duration_column(self, job: SplitJob) -> str:
        if job.duration_seconds is None:
            return "-"
        minutes, seconds = divmod(round(job.duration_seconds), 60)
        return f"{minutes}:{seconds:02d}"

    @admin.display(description=_("cost"), ordering="credits_used")
    def cost_column(self, job: SplitJob) -> str:
        return cost_text(job)

    # --- change view fields -------------------------------------------------------

    @admin.display(description=_("file"))
    def display_name(self, job: SplitJob) -> str:
        return job.display_name

    @admin.display(description=_("source audio"))
    def source_audio(self, job: SplitJob) -> str:
        if not job.audio:
            return "-"
        url = job_admin_url("source", job.pk)
        return format_html(
            '<div class="aiss-media"><audio controls preload="metadata" class="aiss-player" '
            'data-stem="source" src="{}"></audio> <a href="{}?download=1" download>{}</a>'
            '<br><img class="aiss-waveform" loading="lazy" width="600" height="64" alt="{}" '
            'src="{}"></div>',
            url,
            url,
            gettext("Download"),
            gettext("waveform of the source audio"),
            job_admin_url("source_waveform", job.pk),
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
            job_admin_url("status", job.pk),
            "1" if job.is_terminal else "0",
            job.status,
            status_badge_html(job),
            progress_html(job),
        )

    @admin.display(description=_("engine time"))
    def engine_time(self, job: SplitJob) -> str:
        seconds = engine_seconds(job)
        return "-" if seconds is None else gettext("%(s)s s") % {"s": f"{seconds:.1f}"}

    @admin.display(description=_("metadata"))
    def metadata_display(self, job: SplitJob) -> str:
        return json_html(job.metadata)
