"""The split job admin's extra views: upload tickets, the status JSON, audio and waveforms.

The add form's script asks :meth:`SplitJobViewsMixin.upload_ticket_view` for a
direct-upload ticket (the same answer as the API's ``POST /splits/uploads/``),
sends the file where the ticket says, and posts the form with the ticket's id:
the audio never passes through the admin's own request.

Audio goes through these admin-only URLs rather than the storage's own URLs so
the change view plays stems from any storage (private buckets included) and
only to users who may see the job; :mod:`django_aistemsplitter.serving` then
redirects to a signed URL or streams the bytes. The audio and waveform views are
wrapped ``cacheable``: the admin's default wrapper would turn their
``Cache-Control`` into ``no-store``, and players and pictures could never be
revalidated (they are ``private``, so no shared cache keeps them).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponseBase, JsonResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext

from django_aistemsplitter import tickets
from django_aistemsplitter.admin.display import progress_html, status_badge_html
from django_aistemsplitter.exceptions import ConfigurationError
from django_aistemsplitter.models import SplitJob
from django_aistemsplitter.serving import serve, source_audio, stem_audio, stem_or_404
from django_aistemsplitter.validation import InvalidSplitRequest
from django_aistemsplitter.waveform import serve_svg, source_waveform, stem_waveform

logger = logging.getLogger(__name__)

#: The largest ticket request read: a file name, a size and a type.
MAX_TICKET_REQUEST_BYTES = 4096


def _json_error(message: str, status: int, field: str | None = None) -> JsonResponse:
    return JsonResponse({"error": message, "field": field}, status=status)


class SplitJobViewsMixin(admin.ModelAdmin):
    """URLs and views under a job's admin page: ``status``, ``source``, ``stem`` and waveforms."""

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        info = f"{self.opts.app_label}_{self.opts.model_name}"

        def cacheable(view: Any) -> Any:
            return wrap(view, cacheable=True)

        return [
            path(
                "add/upload-ticket/",
                wrap(self.upload_ticket_view),
                name=f"{info}_upload_ticket",
            ),
            path("<path:object_id>/status/", wrap(self.status_view), name=f"{info}_status"),
            path("<path:object_id>/source/", cacheable(self.source_view), name=f"{info}_source"),
            path(
                "<path:object_id>/source/waveform.svg",
                cacheable(self.source_waveform_view),
                name=f"{info}_source_waveform",
            ),
            path(
                "<path:object_id>/stems/<str:name>/",
                cacheable(self.stem_view),
                name=f"{info}_stem",
            ),
            path(
                "<path:object_id>/stems/<str:name>/waveform.svg",
                cacheable(self.stem_waveform_view),
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

    def upload_ticket_view(self, request: HttpRequest) -> JsonResponse:
        """``POST {"filename", "size", "content_type"?}``: a direct-upload ticket for the add form.

        Answers 201 with :meth:`~django_aistemsplitter.tickets.IssuedTicket.as_json`
        (the API's shape), 400 ``{"error", "field"}`` for a refused request (too
        large, no name, too many open tickets), 403 without the add permission.
        The admin's wrapper requires a staff login and checks the CSRF token.
        """
        if request.method != "POST":
            return _json_error(gettext("Use POST to ask for an upload ticket."), 405)
        if not self.has_add_permission(request):
            return _json_error(gettext("You may not add split jobs."), 403)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = MAX_TICKET_REQUEST_BYTES + 1
        if length > MAX_TICKET_REQUEST_BYTES:
            return _json_error(gettext("The ticket request is too long."), 400)
        try:
            data = json.loads(request.body or b"{}")
        except (UnicodeDecodeError, ValueError):
            data = None
        if not isinstance(data, dict):
            return _json_error(gettext("Send a JSON object: filename, size, content_type."), 400)
        size: Any = data.get("size")  # open_ticket refuses anything but a positive int
        try:
            issued = tickets.open_ticket(
                owner=request.user,
                filename=str(data.get("filename") or ""),
                size=size,
                content_type=str(data.get("content_type") or ""),
            )
        except InvalidSplitRequest as exc:
            return _json_error(str(exc), 400, exc.field)
        except ConfigurationError:
            logger.exception("no upload ticket: the direct upload destination is misconfigured")
            message = gettext("Direct uploads are not configured on this site; ask its admins.")
            return _json_error(message, 503)
        except tickets.UploadUnavailableError as exc:
            return _json_error(str(exc), 503)
        return JsonResponse(issued.as_json(), status=201)

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

    def source_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        audio = source_audio(self._job_or_404(request, object_id))
        return serve(request, audio, as_attachment=bool(request.GET.get("download")))

    def stem_view(self, request: HttpRequest, object_id: str, name: str) -> HttpResponseBase:
        stem = stem_or_404(self._job_or_404(request, object_id), name)
        return serve(request, stem_audio(stem), as_attachment=bool(request.GET.get("download")))

    def source_waveform_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        return serve_svg(request, source_waveform(self._job_or_404(request, object_id)))

    def stem_waveform_view(
        self, request: HttpRequest, object_id: str, name: str
    ) -> HttpResponseBase:
        job = self._job_or_404(request, object_id)
        return serve_svg(request, stem_waveform(stem_or_404(job, name)))
