"""Pagination of the split list: page numbers by default, a cursor on request.

Page numbers (``?page=3``) stay the default for compatibility; a deep page
still costs a ``COUNT`` and an ``OFFSET`` over the index entries before it
(:class:`~django_aistemsplitter.paginator.KeysFirstPaginator` keeps it off the rows).
A client that walks a long history asks for a cursor instead: ``?cursor=`` (empty)
starts at the newest job and each answer's ``next`` link carries the position,
so every page is one index range scan of the ``(-created_at, -id)`` index,
however deep, and nothing is counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import NotFound
from rest_framework.pagination import (
    BasePagination,
    Cursor,
    CursorPagination,
    PageNumberPagination,
)
from rest_framework.request import Request
from rest_framework.response import Response

from django_aistemsplitter import contract
from django_aistemsplitter.paginator import KeysFirstPaginator

__all__ = ["SplitCursorPagination", "SplitPageNumberPagination", "SplitPagination"]

#: The list's order; an index of the job table matches it.
ORDERING = ("-created_at", "-id")


class SplitPageNumberPagination(PageNumberPagination):
    django_paginator_class = KeysFirstPaginator  # a deep page walks the index, not the rows
    page_size = contract.LIST_LIMIT_DEFAULT
    page_size_query_param = "page_size"
    max_page_size = contract.LIST_LIMIT_MAX


class SplitCursorPagination(CursorPagination):
    page_size = contract.LIST_LIMIT_DEFAULT
    page_size_query_param = "page_size"
    max_page_size = contract.LIST_LIMIT_MAX
    ordering = ORDERING
    cursor_query_description = (
        "Cursor pagination: empty for the first page, then the value from `next` or "
        "`previous`. Without it, pages are numbered."
    )

    def decode_cursor(self, request: Request) -> Cursor | None:
        """The cursor, whose position must be a date: a forged one is a 404, not a 500."""
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            try:
                valid = parse_datetime(str(cursor.position)) is not None
            except ValueError:
                valid = False
            if not valid:
                raise NotFound(self.invalid_cursor_message)
        return cursor


class SplitPagination(BasePagination):
    """Page numbers, unless the request names a ``cursor`` (even an empty one)."""

    def __init__(self) -> None:
        self.pages = SplitPageNumberPagination()
        self.cursor = SplitCursorPagination()
        self.chosen: BasePagination = self.pages

    def paginate_queryset(
        self, queryset: QuerySet[Any, Any] | Sequence[Any], request: Request, view: Any = None
    ) -> list[Any] | None:
        wanted = self.cursor.cursor_query_param in request.query_params
        self.chosen = self.cursor if wanted else self.pages
        return self.chosen.paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data: Any) -> Response:
        return self.chosen.get_paginated_response(data)

    def get_paginated_response_schema(self, schema: Any) -> Any:
        page = self.pages.get_paginated_response_schema(schema)
        # ``count`` and the page links are absent from a cursor page.
        page["required"] = ["results"]
        return page

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            *self.pages.get_schema_operation_parameters(view),
            *(
                p
                for p in self.cursor.get_schema_operation_parameters(view)
                if p["name"] == self.cursor.cursor_query_param
            ),
        ]

    def get_results(self, data: Any) -> Any:
        return data["results"]
