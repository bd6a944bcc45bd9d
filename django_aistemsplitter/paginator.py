"""A paginator whose deep pages cost an index walk, not a walk through the rows.

Page 900 of a list is ``OFFSET 89900``: the database fetches and throws away
89,900 whole rows (with their joins) to return 100. This paginator first reads
only the page's primary keys, which an index holding the ordering columns and
the key answers without touching the table (``-created_at, -id`` for the job
lists), and then fetches just those rows. The admin's change list and the API's
page-number pagination both use it; the admin's also bounds its count
(:class:`EstimatingPaginator`).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.paginator import Page, Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

__all__ = ["EstimatingPaginator", "KeysFirstPaginator"]


class KeysFirstPaginator(Paginator):
    """Paginate a queryset by the keys of the page first, then those rows (same order).

    Pages that start within the first :attr:`keys_first_from` rows are sliced as
    usual: skipping a few rows costs less than the extra query.
    """

    keys_first_from = 1000

    def page(self, number: Any) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        object_list: Any = self.object_list
        if bottom < self.keys_first_from or not hasattr(object_list, "values_list"):
            return super().page(number)  # near the start, or a list: nothing to defer
        keys = list(object_list.values_list("pk", flat=True)[bottom:top])
        return Page(object_list.filter(pk__in=keys), number, self)


class EstimatingPaginator(KeysFirstPaginator):
    """Count exactly up to :attr:`exact_count_limit` rows; past that, take the planner's word.

    Counting 97,000 matching rows reads 97,000 index entries or the whole table,
    on every page load. The count here reads at most ``exact_count_limit + 1``
    keys along the list's own index; a longer list is counted by PostgreSQL's
    estimate (``EXPLAIN``, no rows read) and :attr:`count_is_estimate` says so,
    which the admin shows as "about". Other databases count exactly.
    """

    exact_count_limit = 10_000
    count_is_estimate = False

    @cached_property
    def count(self) -> int:
        object_list: Any = self.object_list
        if not isinstance(object_list, QuerySet):
            return int(super().count)
        if connections[object_list.db].vendor != "postgresql":
            return int(super().count)
        keys = object_list.values_list("pk", flat=True)
        counted = int(keys[: self.exact_count_limit + 1].count())  # in the list's order
        if counted <= self.exact_count_limit:
            return counted
        plan = json.loads(keys.order_by().explain(format="json"))
        self.count_is_estimate = True
        return max(counted, int(plan[0]["Plan"]["Plan Rows"]))
