"""The split job change list's filters, search, date drill-down and pagination, row by row.

``test_changelist_scale.py`` checks their plans at 100,000 rows; this file checks
that they answer the same as Django's own (slower) implementations would.
"""

from __future__ import annotations

import datetime
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from django.core.paginator import Paginator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_aistemsplitter.admin.filters import job_search, with_date_buckets
from django_aistemsplitter.models import SplitJob
from django_aistemsplitter.paginator import EstimatingPaginator, KeysFirstPaginator
from tests.api.helpers import make_job

pytestmark = pytest.mark.django_db

LIST_URL = "admin:aistemsplitter_splitjob_changelist"


def job_at(moment: datetime.datetime, **fields: Any) -> SplitJob:
    job = make_job(with_audio=False, stems=(), **fields)
    SplitJob.objects.filter(pk=job.pk).update(created_at=moment)
    return job


def test_filter_choices_come_without_reading_the_table(admin_client: Any, media_root: Path) -> None:
    make_job(filename="a.wav", stems=(), stem_model="some_custom_model", backend="my.Backend")
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(reverse(LIST_URL))
    assert not [q["sql"] for q in captured.captured_queries if "DISTINCT" in q["sql"].upper()]
    html = response.content.decode()
    assert "?model=htdemucs_6s" in html  # the hosted catalogue
    assert "?backend=hosted" in html and "?backend=local" in html
    # A value only the rows know is still filterable, and offered while selected.
    response = admin_client.get(reverse(LIST_URL), {"model": "some_custom_model"})
    assert [j.original_filename for j in response.context["cl"].result_list] == ["a.wav"]
    assert "?model=some_custom_model" in response.content.decode()


def test_search_matches_ids_exactly_and_names_by_prefix(media_root: Path) -> None:
    alpha = make_job(filename="Alpha Song.wav", stems=(), remote_id="spl_alpha")
    beta = make_job(filename="beta-alpha.wav", stems=(), remote_id="spl_beta")

    def found(term: str) -> set[str]:
        return set(
            SplitJob.objects.filter(job_search(term)).values_list("original_filename", flat=True)
        )

    assert found("alpha") == {"Alpha Song.wav"}  # the start of the name, any case
    assert found("ALPHA s") == {"Alpha Song.wav"}
    assert found("spl_beta") == {"beta-alpha.wav"}  # the remote id, exactly
    assert found("spl_") == set()
    assert found(str(beta.pk)) == {"beta-alpha.wav"}
    assert found(str(alpha.pk).upper()) == {"Alpha Song.wav"}
    assert found(str(alpha.pk)[:8]) == set()  # no partial ids
    assert found("song") == set()  # not anywhere in the name


def test_search_box_says_what_it_matches(admin_client: Any, media_root: Path) -> None:
    make_job(filename="x.wav", stems=())
    response = admin_client.get(reverse(LIST_URL), {"q": "  "})
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 1
    assert "start of a file name" in response.content.decode()


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/New_York"])
def test_date_buckets_answer_like_django(zone: str, settings: Any, media_root: Path) -> None:
    settings.TIME_ZONE = zone
    utc = datetime.timezone.utc
    moments = [
        datetime.datetime(2024, 12, 31, 23, 30, tzinfo=utc),  # 2025 in Paris, 2024 in New York
        datetime.datetime(2025, 3, 1, 0, 10, tzinfo=utc),
        datetime.datetime(2025, 3, 30, 1, 30, tzinfo=utc),  # the night clocks change in Paris
        datetime.datetime(2025, 3, 31, 12, tzinfo=utc),
        datetime.datetime(2026, 7, 4, 4, 30, tzinfo=utc),
    ]
    for index, moment in enumerate(moments):
        job_at(moment, filename=f"{index}.wav", status="failed" if index % 2 else "succeeded")
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        for base in (SplitJob.objects.all(), SplitJob.objects.filter(status="failed")):
            ours = with_date_buckets(base)
            for kind in ("year", "month", "day"):
                for order in ("ASC", "DESC"):
                    expected = list(base.datetimes("created_at", kind, order))
                    assert list(ours.datetimes("created_at", kind, order)) == expected, (
                        kind,
                        order,
                    )
            march = ours.filter(created_at__year=2025, created_at__month=3)
            assert march.datetimes("created_at", "day") == list(
                base.filter(created_at__year=2025, created_at__month=3).datetimes(
                    "created_at", "day"
                )
            )
    assert with_date_buckets(SplitJob.objects.none()).datetimes("created_at", "month") == []


def test_date_drill_down_in_the_admin(admin_client: Any, media_root: Path) -> None:
    utc = datetime.timezone.utc
    job_at(datetime.datetime(2025, 5, 2, 10, tzinfo=utc), filename="may.wav")
    job_at(datetime.datetime(2025, 6, 20, 10, tzinfo=utc), filename="june.wav")
    job_at(datetime.datetime(2026, 1, 9, 10, tzinfo=utc), filename="next-year.wav")
    html = admin_client.get(reverse(LIST_URL)).content.decode()
    assert "created_at__year=2025" in html and "created_at__year=2026" in html
    months = admin_client.get(reverse(LIST_URL), {"created_at__year": "2025"})
    html = months.content.decode()
    assert "created_at__month=5" in html and "created_at__month=6" in html
    assert "created_at__month=1&" not in html
    assert {j.original_filename for j in months.context["cl"].result_list} == {
        "may.wav",
        "june.wav",
    }


def test_keys_first_pages_match_plain_pages(
    media_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(23):
        make_job(filename=f"{index:02}.wav", stems=())
    queryset = SplitJob.objects.order_by("-created_at", "-id")
    monkeypatch.setattr(KeysFirstPaginator, "keys_first_from", 0)  # from the first page on
    ours, plain = KeysFirstPaginator(queryset, 5, orphans=3), EstimatingPaginator(queryset, 5)
    reference = Paginator(queryset, 5, orphans=3)
    assert ours.num_pages == reference.num_pages == 4  # the last page takes 3 orphans
    for number in ours.page_range:
        assert list(ours.page(number)) == list(reference.page(number))
    assert plain.count == 23 and not plain.count_is_estimate


def test_a_long_list_is_counted_by_estimate(
    admin_client: Any, media_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(12):
        make_job(filename=f"{index:02}.wav", stems=())
    monkeypatch.setattr(EstimatingPaginator, "exact_count_limit", 5)
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(reverse(LIST_URL))
    cl = response.context["cl"]
    counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1, "counted once: show_full_result_count is off"
    if connection.vendor == "postgresql":
        assert cl.paginator.count_is_estimate
        assert "LIMIT 6" in counts[0]  # at most exact_count_limit + 1 keys read
        assert cl.result_count >= 6
        assert "about" in response.content.decode()
    else:
        assert cl.result_count == 12
    assert len(cl.result_list) == 12
    small = admin_client.get(reverse(LIST_URL), {"q": "03"}).context["cl"]
    assert small.result_count == 1 and not small.paginator.count_is_estimate
