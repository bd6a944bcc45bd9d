"""100,000 jobs on PostgreSQL: every list page the admin and the API serve runs off an index.

The table is seeded with one ``INSERT ... SELECT generate_series`` (a couple of
seconds), vacuumed and analysed as autovacuum would; then each page is
requested with its queries captured, and each query that reads the job table is
explained: no plan may read the whole table ("Seq Scan on
aistemsplitter_splitjob"). Plans are asserted, not timings (those vary with the
machine); with ``AISTEMSPLITTER_PRINT_TIMINGS=1`` the last test prints the
database time of each page.
"""

from __future__ import annotations

import base64
import datetime
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from django_aistemsplitter.models import SplitJob

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.django_db,
    pytest.mark.urls("tests.api.urls"),
]

ROWS = 100_000
TABLE = SplitJob._meta.db_table
LIST_URL = "admin:aistemsplitter_splitjob_changelist"
#: Newest job: one every ~6 minutes back from here, so the rows span about a year.
NEWEST = datetime.datetime(2026, 6, 30, 12, tzinfo=datetime.timezone.utc)

SEED = f"""
INSERT INTO {TABLE} (
    id, object_id, source_field, audio, source_url, original_filename, stem_model,
    output_format, backend, remote_id, remote_input, status, progress, error_code,
    error_message, duration_seconds, idempotency_key, attempts, unfinished_runs,
    reconcile_attempts, created_at, updated_at, metadata
)
SELECT
    md5('job' || n)::uuid, '', '', '', '',
    'song-' || lpad(n::text, 6, '0') || '.wav',
    (ARRAY['htdemucs', 'htdemucs_ft', 'htdemucs_6s', 'mdx_extra'])[1 + n %% 4],
    (ARRAY['wav', 'wav', 'flac', 'mp3'])[1 + n %% 4],
    CASE WHEN n %% 3 = 0 THEN 'local' ELSE 'hosted' END,
    CASE WHEN n %% 3 = 0 THEN '' ELSE 'spl_' || n END,
    '{{}}',
    CASE WHEN n %% 50 = 0 THEN 'failed' WHEN n %% 97 = 0 THEN 'processing' ELSE 'succeeded' END,
    1.0, '', '', 180.0, md5('key' || n), 1, 0, 0,
    %(newest)s - n * interval '313 seconds',
    %(newest)s - n * interval '313 seconds',
    '{{}}'
FROM generate_series(1, {ROWS}) AS n
"""


@pytest.fixture(scope="module")
def hundred_thousand_jobs(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """The rows, committed once for the module (and vacuumed, as autovacuum keeps them)."""
    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            pytest.skip("the plans are PostgreSQL's")
        with connection.cursor() as cursor:
            cursor.execute(SEED, {"newest": NEWEST})
            cursor.execute(f"VACUUM ANALYZE {TABLE}")
    yield
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {TABLE} CASCADE")


def scans_of_the_job_table(queries: list[dict[str, Any]]) -> list[str]:
    """The captured queries on the job table whose plan reads all of it."""
    found = []
    with connection.cursor() as cursor:
        for query in queries:
            sql = query["sql"]
            if TABLE not in sql or not sql.lstrip().upper().startswith("SELECT"):
                continue
            cursor.execute(f"EXPLAIN {sql}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
            if f"Seq Scan on {TABLE}" in plan:
                found.append(f"{sql}\n{plan}")
    return found


TIMINGS: dict[str, float] = {}


def admin_pages(job: SplitJob) -> dict[str, dict[str, str]]:
    newest = NEWEST
    return {
        "default page": {},
        "page 900": {"p": "900"},
        "status filter (rare)": {"status__exact": "failed"},
        "status filter (common)": {"status__exact": "succeeded"},
        "model filter": {"model": "htdemucs_6s"},
        "backend filter": {"backend": "local"},
        "format filter": {"output_format__exact": "flac"},
        "year": {"created_at__year": str(newest.year)},
        "month": {"created_at__year": str(newest.year), "created_at__month": "3"},
        "day": {
            "created_at__year": str(newest.year),
            "created_at__month": "3",
            "created_at__day": "14",
        },
        "search by file name prefix": {"q": "song-0421"},
        "search by remote id": {"q": "spl_4211"},
        "search by job id": {"q": str(job.pk)},
        "search and filter": {"q": "SONG-01", "status__exact": "failed"},
    }


def test_admin_list_pages_read_no_whole_table(
    hundred_thousand_jobs: None, admin_client: Any
) -> None:
    job = SplitJob.objects.get(remote_id="spl_4211")
    admin_client.get(reverse(LIST_URL))  # warm the session and the content types
    problems = {}
    for label, params in admin_pages(job).items():
        with CaptureQueriesContext(connection) as captured:
            response = admin_client.get(reverse(LIST_URL), params)
        assert response.status_code == 200, label
        TIMINGS[f"admin: {label}"] = sum(float(q["time"]) for q in captured.captured_queries)
        scans = scans_of_the_job_table(captured.captured_queries)
        if scans:
            problems[label] = scans
    assert not problems, "\n\n".join(f"{k}:\n" + "\n".join(v) for k, v in problems.items())
    # The search found what it was asked for.
    found = admin_client.get(reverse(LIST_URL), {"q": "spl_4211"}).context["cl"].result_list
    assert [j.pk for j in found] == [job.pk]
    by_prefix = admin_client.get(reverse(LIST_URL), {"q": "SONG-04211"}).context["cl"]
    assert {j.original_filename for j in by_prefix.result_list} == {
        f"song-04211{digit}.wav" for digit in range(10)
    }
    by_id = admin_client.get(reverse(LIST_URL), {"q": str(job.pk)}).context["cl"]
    assert [j.pk for j in by_id.result_list] == [job.pk]
    # Page 900 holds the jobs 89,901 to 90,000 newest first.
    deep = admin_client.get(reverse(LIST_URL), {"p": "900"}).context["cl"]
    assert deep.result_list[0].original_filename == "song-089901.wav"
    assert len(deep.result_list) == 100


def test_api_list_pages_read_no_whole_table(hundred_thousand_jobs: None, admin_user: Any) -> None:
    api = APIClient()
    api.force_authenticate(admin_user)
    pages = {
        "first page": {},
        "page 4000": {"page": "4000", "page_size": "25"},
        "status filter": {"status": "failed"},
        "model filter": {"model": "htdemucs_6s"},
        "cursor, first page": {"cursor": ""},
    }
    problems = {}
    next_url = ""
    for label, params in pages.items():
        with CaptureQueriesContext(connection) as captured:
            response = api.get("/api/splits/", params)
        assert response.status_code == 200, (label, response.content[:300])
        TIMINGS[f"api: {label}"] = sum(float(q["time"]) for q in captured.captured_queries)
        if label.startswith("cursor"):
            next_url = response.json()["next"]
        scans = scans_of_the_job_table(captured.captured_queries)
        if scans:
            problems[label] = scans
    # Deep in the history by cursor: an index range, however far.
    position = NEWEST - datetime.timedelta(seconds=313 * 90_000)
    deep_cursor = base64.b64encode(urlencode({"p": str(position)}).encode()).decode()
    for label, url in (("cursor, next page", next_url), ("cursor, 90,000 jobs back", "")):
        with CaptureQueriesContext(connection) as captured:
            response = api.get(url or "/api/splits/", {} if url else {"cursor": deep_cursor})
        assert response.status_code == 200, label
        TIMINGS[f"api: {label}"] = sum(float(q["time"]) for q in captured.captured_queries)
        scans = scans_of_the_job_table(captured.captured_queries)
        if scans:
            problems[label] = scans
    names = [r["filename"] for r in response.json()["results"]]
    assert names[0] == "song-090001.wav" and len(names) == 20
    assert not problems, "\n\n".join(f"{k}:\n" + "\n".join(v) for k, v in problems.items())
    last = api.get("/api/splits/", {"page": "4000", "page_size": "25"}).json()["results"]
    assert [r["filename"] for r in last][-1] == "song-100000.wav"


def test_record_timings() -> None:
    if TIMINGS and os.environ.get("AISTEMSPLITTER_PRINT_TIMINGS"):
        width = max(len(k) for k in TIMINGS)
        print("\ndatabase time per page at 100,000 jobs (ms):")
        for label, seconds in TIMINGS.items():
            print(f"  {label:<{width}}  {seconds * 1000:7.1f}")
