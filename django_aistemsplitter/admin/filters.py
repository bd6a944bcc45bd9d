"""The split job change list at any size: filters, search and date drill-down off indexes.

With 100,000 jobs, anything that reads the whole table on each page load shows.
So the filter choices come from what the code knows (the backends' model
catalogues, the backend names), never from ``SELECT DISTINCT`` over the rows;
search looks a job up by its exact id or remote id, or by the start of its file
name (each an index lookup, where ``icontains`` on three columns scans them
all); and the date drill-down probes each year, month or day between the first
and the last job for one row (an index probe each, one query in all), instead
of truncating every row's date and sorting them.

Counting the list is left to the database: on a vacuumed table (autovacuum sees
to it) PostgreSQL counts from the smallest matching index, not the table.
"""

from __future__ import annotations

import contextlib
import datetime
import uuid
from typing import Any, Literal

from django.conf import settings
from django.contrib import admin
from django.db import connections
from django.db.models import Max, Min, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_aistemsplitter import contract
from django_aistemsplitter.backends import BACKENDS
from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.exceptions import AiStemSplitterError
from django_aistemsplitter.models import SplitJob, SplitJobQuerySet
from django_aistemsplitter.validation import available_models

__all__ = ["BackendFilter", "DateBucketsQuerySet", "ModelFilter", "job_search"]


class _KnownValuesFilter(admin.SimpleListFilter):
    """Choices known without reading the table, plus the value being filtered on."""

    field_name = ""

    def known_values(self) -> set[str]:
        raise NotImplementedError

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        values = self.known_values()
        if self.value():
            values.add(str(self.value()))
        return [(v, v) for v in sorted(values)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value:
            return queryset.filter(**{self.field_name: value})
        return queryset


class ModelFilter(_KnownValuesFilter):
    """The models the configured backend serves and the hosted service's catalogue."""

    title = _("model")
    parameter_name = "model"
    field_name = "stem_model"

    def known_values(self) -> set[str]:
        values = set(contract.MODELS)
        # A misconfigured backend still leaves the catalogue to filter on.
        with contextlib.suppress(AiStemSplitterError, ImportError, ValueError):
            values.update(available_models())
        return values


class BackendFilter(_KnownValuesFilter):
    """The built-in backends and the configured one (a dotted path, perhaps)."""

    title = _("backend")
    parameter_name = "backend"
    field_name = "backend"

    def known_values(self) -> set[str]:
        return {*BACKENDS, str(get_setting("BACKEND"))}


def job_search(term: str) -> Q:
    """Jobs whose id or remote id is ``term``, or whose file name starts with it (any case)."""
    term = term.strip()
    condition = Q(remote_id=term) | Q(original_filename__istartswith=term)
    with contextlib.suppress(ValueError):  # not a job id: no id condition
        condition |= Q(pk=uuid.UUID(term))
    return condition


# --- date drill-down ------------------------------------------------------------------

_KINDS = ("year", "month", "day")


def _bucket_start(moment: datetime.datetime, kind: str) -> datetime.datetime:
    return moment.replace(
        month=moment.month if kind != "year" else 1,
        day=moment.day if kind == "day" else 1,
        hour=0,
        minute=0,
        second=0,
        microsecond=0,
    )


def _next_bucket(start: datetime.datetime, kind: str) -> datetime.datetime:
    if kind == "year":
        return start.replace(year=start.year + 1)
    if kind == "month":
        year, month = divmod(start.month, 12)
        return start.replace(year=start.year + year, month=month + 1)
    following = start.date() + datetime.timedelta(days=1)
    return datetime.datetime.combine(following, datetime.time(), tzinfo=start.tzinfo)


class DateBucketsQuerySet(SplitJobQuerySet):
    """Jobs whose ``datetimes()`` probes each year, month or day on the index.

    The admin's date hierarchy asks ``queryset.datetimes(field, kind)`` for the
    years, months or days holding at least one row; Django answers with
    ``DISTINCT DATE_TRUNC(...)`` over every matching row. Here the first and
    last dates come from the index's ends, and each bucket between them is
    probed for its first row (``ORDER BY <field> LIMIT 1`` on an index range),
    all probes in one ``UNION ALL`` where the database allows it: at most 31
    index probes for the days of a month, whatever the number of rows.
    """

    def datetimes(
        self,
        field_name: str,
        kind: Literal["year", "month", "week", "day", "hour", "minute", "second"],
        order: Literal["ASC", "DESC"] = "ASC",
        tzinfo: datetime.tzinfo | None = None,
    ) -> Any:
        if kind not in _KINDS:
            return super().datetimes(field_name, kind, order, tzinfo)
        zone = tzinfo or (timezone.get_current_timezone() if settings.USE_TZ else None)

        def local(moment: datetime.datetime) -> datetime.datetime:
            if zone is not None and timezone.is_aware(moment):
                return timezone.localtime(moment, zone)
            return moment

        ends = self.aggregate(first=Min(field_name), last=Max(field_name))
        if ends["first"] is None:
            return []
        buckets = []
        start, last = _bucket_start(local(ends["first"]), kind), local(ends["last"])
        while start <= last:
            buckets.append((start, _next_bucket(start, kind)))
            start = buckets[-1][1]
        probes = [
            self.filter(**{f"{field_name}__gte": low, f"{field_name}__lt": high})
            .order_by(field_name)
            .values_list(field_name, flat=True)[:1]
            for low, high in buckets
        ]
        if len(probes) > 1 and connections[self.db].features.supports_slicing_ordering_in_compound:
            hits = list(probes[0].union(*probes[1:], all=True))
        else:
            hits = [hit for probe in probes for hit in probe]
        found = sorted({_bucket_start(local(hit), kind) for hit in hits})
        return found if order == "ASC" else found[::-1]


def with_date_buckets(queryset: QuerySet[SplitJob]) -> DateBucketsQuerySet:
    """``queryset`` (filters, joins and order kept) as a :class:`DateBucketsQuerySet`."""
    return DateBucketsQuerySet(queryset.model, query=queryset.query.chain(), using=queryset.db)
