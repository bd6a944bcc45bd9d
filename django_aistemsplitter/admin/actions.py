"""Bulk actions of the split job change list: split again, retry, cancel, re-download.

Each action is one service call per selected job. :func:`run_on_jobs` walks
the selection, leaves alone the jobs an action does not apply to (saying
why), turns a service error into a message instead of a 500 and sums it all
up, so every action reports the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from django_aistemsplitter import services
from django_aistemsplitter.exceptions import AiStemSplitterError
from django_aistemsplitter.forms import service_error_message
from django_aistemsplitter.models import RETRYABLE, TERMINAL, SplitJob, SplitStatus

#: What a service call may raise for one job; shown as a message, never a 500.
SERVICE_ERRORS: tuple[type[Exception], ...] = (AiStemSplitterError, ValueError, OSError)


class Skipped(Exception):
    """Raised by an action's step: the job was left alone, for the reason in the message."""


def run_on_jobs(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[SplitJob],
    step: Callable[[SplitJob], Any],
    *,
    verb: str,
    skip: Callable[[SplitJob], str | None] | None = None,
) -> None:
    """Call ``step`` on each selected job and report what happened.

    ``skip`` returns why a job is left out before the call (None: go ahead);
    ``step`` may raise :class:`Skipped` when the service declined. ``verb``
    starts the success message ("Retried 2 jobs.").
    """
    done, skipped, errors = 0, [], []
    for job in queryset:
        try:
            reason = skip(job) if skip is not None else None
            if reason is None:
                step(job)
        except Skipped as exc:
            reason = str(exc)
        except SERVICE_ERRORS as exc:
            errors.append(f"{job.display_name}: {service_error_message(exc)}")
            continue
        if reason is None:
            done += 1
        else:
            skipped.append(reason)
    _report(modeladmin, request, done, skipped, errors, verb)


def _report(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    done: int,
    skipped: list[str],
    errors: list[str],
    verb: str,
) -> None:
    if done:
        modeladmin.message_user(
            request,
            ngettext("%(verb)s %(n)d job.", "%(verb)s %(n)d jobs.", done)
            % {"verb": verb, "n": done},
            messages.SUCCESS,
        )
    if skipped:
        modeladmin.message_user(
            request, gettext("Skipped: %s") % "; ".join(skipped), messages.WARNING
        )
    for error in errors:
        modeladmin.message_user(request, error, messages.ERROR)
    if not (done or skipped or errors):
        modeladmin.message_user(request, gettext("Nothing to do."), messages.INFO)


def _name_and_status(job: SplitJob) -> dict[str, Any]:
    return {"name": job.display_name, "status": job.get_status_display()}


@admin.action(description=_("Split again (new job from the same audio)"), permissions=["add"])
def split_again(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[SplitJob]
) -> None:
    def step(job: SplitJob) -> None:
        try:
            services.split_again(job, owner=request.user)
        except services.NothingToSplitError as exc:
            raise Skipped(gettext("“%s” has no audio") % job.display_name) from exc

    run_on_jobs(modeladmin, request, queryset, step, verb=gettext("Started a new split for"))


@admin.action(description=_("Retry failed or cancelled jobs"), permissions=["change"])
def retry_failed(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[SplitJob]
) -> None:
    def skip(job: SplitJob) -> str | None:
        if job.status in RETRYABLE:
            return None
        return gettext("“%(name)s” is %(status)s") % _name_and_status(job)

    run_on_jobs(modeladmin, request, queryset, services.retry, verb=gettext("Retried"), skip=skip)


@admin.action(description=_("Cancel running jobs"), permissions=["change"])
def cancel_jobs(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[SplitJob]
) -> None:
    def skip(job: SplitJob) -> str | None:
        if job.status not in TERMINAL:
            return None
        return gettext("“%(name)s” already %(status)s") % _name_and_status(job)

    def step(job: SplitJob) -> None:
        if not services.cancel(job):  # it finished meanwhile
            raise Skipped(gettext("“%s” could not be cancelled") % job.display_name)

    run_on_jobs(modeladmin, request, queryset, step, verb=gettext("Cancelled"), skip=skip)


@admin.action(description=_("Re-download stems (reconcile)"), permissions=["change"])
def redownload_stems(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[SplitJob]
) -> None:
    def skip(job: SplitJob) -> str | None:
        if job.status != SplitStatus.PENDING:
            return None
        return gettext("“%s” was not submitted yet") % job.display_name

    run_on_jobs(
        modeladmin,
        request,
        queryset,
        services.redownload,
        verb=gettext("Queued a re-download for"),
        skip=skip,
    )
