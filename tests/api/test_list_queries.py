"""What a page of the split list costs: queries and URL building that do not grow with it.

A list page runs a fixed set of queries whatever its size and however many stems
its jobs have: (``COUNT`` on numbered pages,) the page's job rows without a join,
and their stems without a join back to the jobs; a cursor page counts nothing.
The job and stem URLs come from one ``reverse()`` per route and request, and are
the URLs ``reverse()`` gives for each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from django_aistemsplitter.api import serializers as api_serializers
from django_aistemsplitter.models import SplitJob, Stem
from tests.api.helpers import make_job

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.urls")]

SPLITS = "/api/splits/"
JOB_TABLE = SplitJob._meta.db_table


@pytest.fixture
def owner(django_user_model: Any, media_root: Path) -> Any:
    """An ordinary user (the list is filtered to their jobs) with 12 jobs: 8 with 4 stems,
    4 without, interleaved so that the newest has none and larger pages mix both."""
    user = django_user_model.objects.create_user("lister")
    for index in range(12):
        stems = () if index % 3 == 2 else ("vocals", "drums", "bass", "other")
        make_job(user, filename=f"{index}.wav", stems=stems, with_audio=False)
    return user


@pytest.fixture
def api(owner: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(owner)
    client.get(SPLITS)  # content types, permissions: caches a first request fills
    return client


def run(api: APIClient, **params: Any) -> tuple[dict[str, Any], list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = api.get(SPLITS, params)
    assert response.status_code == 200, response.content[:300]
    return response.json(), [q["sql"] for q in captured.captured_queries]


@pytest.mark.parametrize("mode", ["page", "cursor"])
def test_queries_do_not_grow_with_the_page_size_or_the_stems(api: APIClient, mode: str) -> None:
    first: dict[str, str] = {"cursor": ""} if mode == "cursor" else {"page": "1"}
    counts = {}
    for size in (1, 3, 12):
        body, sql = run(api, page_size=size, **first)
        assert len(body["results"]) == size
        counts[size] = len(sql)
    # Page size 1 holds a job without stems; 3 and 12 hold both kinds.
    assert [len(r["stems"]) for r in run(api, page_size=1, **first)[0]["results"]] == [0]
    expected = 3 if mode == "page" else 2  # (COUNT,) the jobs, their stems
    assert counts == {1: expected, 3: expected, 12: expected}


def test_a_numbered_page_counts_and_a_cursor_page_does_not(api: APIClient) -> None:
    body, sql = run(api, page_size=5, page=2)
    assert body["count"] == 12
    assert sum("COUNT(" in q.upper() for q in sql) == 1

    body, sql = run(api, page_size=5, cursor="")
    assert "count" not in body
    assert not any("COUNT(" in q.upper() for q in sql)
    next_page = body["next"]
    with CaptureQueriesContext(connection) as captured:
        deeper = api.get(next_page).json()
    assert len(deeper["results"]) == 5
    assert not any("COUNT(" in q["sql"].upper() for q in captured.captured_queries)


def test_list_queries_join_nothing(api: APIClient, django_user_model: Any) -> None:
    """The rows need no user (``owner_id`` is in the row) and the stems need no job
    ordering (a job's stems come in id order, which the model's ordering reduces to)."""
    users = django_user_model._meta.db_table
    _body, sql = run(api, page_size=12)
    rows = [q for q in sql if f'FROM "{JOB_TABLE}"' in q and "COUNT(" not in q.upper()]
    assert len(rows) == 1
    assert users not in rows[0]
    assert not any(" JOIN " in q.upper() for q in sql)


def test_stems_keep_their_order_within_each_job(api: APIClient) -> None:
    body, _sql = run(api, page_size=12)
    for item in body["results"]:
        job = SplitJob.objects.get(pk=item["id"])
        assert [s["name"] for s in item["stems"]] == list(
            job.stems.order_by("job", "id").values_list("name", flat=True)
        )


def test_urls_are_reversed_once_per_request(
    api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = api_serializers.reverse

    def counting(viewname: str, *args: Any, **kwargs: Any) -> str:
        calls.append(viewname)
        return real(viewname, *args, **kwargs)

    monkeypatch.setattr(api_serializers, "reverse", counting)
    per_size = {}
    for size in (1, 12):
        calls.clear()
        body, _sql = run(api, page_size=size)
        assert len(body["results"]) == size
        per_size[size] = len(calls)
    assert per_size[1] == per_size[12] <= 2


def test_urls_are_what_reverse_gives(api: APIClient, owner: Any) -> None:
    """Also for names a template could get wrong (quoted characters, dot segments), which
    no split stores (``contract.STEM_NAME_RE``) but a row could hold."""
    job = make_job(owner, filename="odd.wav", stems=("vocals",), with_audio=False)
    for name in ("lead vox", "..", "b\u00e4ss", "a&b"):
        Stem.objects.create(job=job, name=name, file=f"x/{job.pk}/odd.wav", format="wav")
    body, _sql = run(api, page_size=20)
    assert len(body["results"]) == 13
    request = api.get(SPLITS).wsgi_request
    seen = set()
    for item in body["results"]:
        assert item["url"] == "http://testserver" + reverse(
            "aistemsplitter_api:split-detail", args=[item["id"]]
        )
        for stem in item["stems"]:
            path = reverse("aistemsplitter_api:split-stem", args=[item["id"], stem["name"]])
            assert stem["url"] == request.build_absolute_uri(path)
            seen.add(stem["name"])
    assert {"lead vox", "..", "b\u00e4ss", "a&b", "vocals"} <= seen
    # The detail view gives the same URLs as the list.
    odd = next(item for item in body["results"] if item["filename"] == "odd.wav")
    assert api.get(odd["url"]).json()["stems"] == odd["stems"]
