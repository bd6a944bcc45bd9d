"""Figures of the REST API with 10,000 jobs in PostgreSQL: queries per page and latencies.

The jobs (40,000 stems with them) belong to one ordinary user, who lists them
page by page like a client would. Queries are counted in this process through
DRF's test client with the user forced in (so authentication's own queries,
two per request with session auth, are left out; they do not depend on the
page size). Latencies are measured over HTTP against the bench project under
gunicorn with a session cookie, one request at a time, each API request
alternating with a request to a view that only runs ``SELECT 1`` behind the
same middleware and session: the baseline, what any request to this server costs.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

import httpx
from harness import Context, Result, figure, median, profile_calls

JOBS = 10_000
_population: dict[str, Any] = {}


def _clone_rows(model: Any, template_pk: Any, count: int, exprs: dict[str, str]) -> None:
    """``count`` copies of one row in one ``INSERT ... SELECT`` (columns from the model's
    meta, so fields added later are copied too); ``exprs`` overrides columns with SQL
    over ``g``, the copy's number from ``generate_series``."""
    from django.db import connection

    table = model._meta.db_table
    columns = [f.column for f in model._meta.concrete_fields]
    quote = connection.ops.quote_name
    select = [exprs.get(c, f"t.{quote(c)}") for c in columns]
    sql = (
        f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in columns)}) "
        f"SELECT {', '.join(select)} FROM {quote(table)} t, generate_series(1, %s) g "
        f"WHERE t.{quote(model._meta.pk.column)} = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [count, template_pk])


def populate(ctx: Context) -> Any:
    """The user owning :data:`JOBS` jobs (created once per run, in SQL: seconds, not minutes)."""
    if "user" in _population:
        return _population["user"]
    ctx.django()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from django_aistemsplitter.models import SplitJob, SplitStatus, Stem

    started = time.monotonic()
    user = get_user_model().objects.create_user(f"bench-{uuid.uuid4().hex[:6]}")
    template = SplitJob.objects.create(
        owner=user,
        backend="hosted",
        stem_model="htdemucs_ft",
        output_format="wav",
        remote_id="split_api_template",
        status=SplitStatus.SUCCEEDED,
        progress=1.0,
        duration_seconds=180.0,
        original_filename="song.wav",
        audio="aistemsplitter/audio/bench/song.wav",
        finished_at=timezone.now(),
    )
    for name in ("vocals", "drums", "bass", "other"):
        Stem.objects.create(
            job=template,
            name=name,
            file=f"aistemsplitter/stems/{template.pk}/{name}.wav",
            format="wav",
            size=31_752_044,
            sha256="0" * 64,
            duration_seconds=180.0,
            sample_rate=44100,
            channels=2,
        )
    _clone_rows(
        SplitJob,
        template.pk,
        JOBS - 1,
        {
            "id": "gen_random_uuid()",
            "idempotency_key": "md5(random()::text || g::text)",
            "remote_id": "'split_api' || g::text",
            "original_filename": "'song-' || g::text || '.wav'",
            # Spread over a day, so the list's ordering has work to do.
            "created_at": "t.created_at - make_interval(secs => g * 8.64)",
            "status": "CASE WHEN g %% 10 = 0 THEN 'failed' ELSE t.status END",
        },
    )
    stem = Stem._meta
    quote = connection.ops.quote_name
    columns = [f.column for f in stem.concrete_fields if f.column != stem.pk.column]
    select = {
        "job_id": "j.id",
        "file": "'aistemsplitter/stems/' || j.id::text || '/' || s.name || '.wav'",
    }
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(stem.db_table)} ({', '.join(quote(c) for c in columns)}) "
            f"SELECT {', '.join(select.get(c, f's.{quote(c)}') for c in columns)} "
            f"FROM {quote(SplitJob._meta.db_table)} j, {quote(stem.db_table)} s "
            f"WHERE j.owner_id = %s AND j.id <> %s AND j.status = 'succeeded' AND s.job_id = %s",
            [user.pk, template.pk, template.pk],
        )
        cursor.execute("ANALYZE")
    ctx.say(f"    {JOBS} jobs created in {time.monotonic() - started:.1f} s")
    _population["user"] = user
    return user


def list_queries(user: Any, page_size: int) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    client.get("/api/splits/", {"page_size": page_size})  # warm caches (content types...)
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/api/splits/", {"page_size": page_size, "page": 3})
    assert response.status_code == 200, response.content[:500]
    assert len(response.json()["results"]) == page_size
    return len(captured)


@figure("api_list_queries", "queries", "<= 3, equal at 10 and 100", order=50)
def api_list_queries(ctx: Context) -> Result:
    user = populate(ctx)
    counts = {size: list_queries(user, size) for size in (10, 100)}
    if ctx.profile_dir is not None:
        from rest_framework.test import APIClient

        client = APIClient()
        client.force_authenticate(user)
        pages = iter(range(1, 51))
        profile_calls(
            ctx, "api-list", lambda: client.get("/api/splits/", {"page": next(pages)}), 50
        )
    worst = max(counts.values())
    equal = len(set(counts.values())) == 1
    return Result(
        worst,
        f"page size 10: {counts[10]}",
        f"GET /api/splits/ page 3 of a user's {JOBS} jobs: {counts[10]} queries at page size 10, "
        f"{counts[100]} at 100 (authentication excluded)",
        met=worst <= 3 and equal,
    )


class Session:
    """A logged-in browser-like HTTP client for the bench server."""

    def __init__(self, server_url: str, user: Any) -> None:
        from django.conf import settings
        from django.test import Client

        login = Client()
        login.force_login(user)
        token = secrets.token_hex(16)  # 32 characters, Django's unmasked CSRF secret
        self.http = httpx.Client(
            base_url=server_url,
            timeout=60,
            cookies={
                settings.SESSION_COOKIE_NAME: login.cookies[settings.SESSION_COOKIE_NAME].value,
                settings.CSRF_COOKIE_NAME: token,
            },
            headers={"X-CSRFToken": token},
        )

    def timed(self, method: str, url: str, **kwargs: Any) -> float:
        started = time.perf_counter()
        response = self.http.request(method, url, **kwargs)
        elapsed = time.perf_counter() - started
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:300]}")
        return elapsed * 1000


_servers: dict[str, Any] = {}


def api_server(ctx: Context) -> tuple[Any, str]:
    if "server" not in _servers:
        queue = "bench-sink-" + uuid.uuid4().hex[:8]
        settings = {"BACKEND": "local", "ENGINE": "passthrough", "TASK_QUEUE": queue}
        _servers["server"] = ctx.server(settings, workers=2, name="gunicorn-api")
        _servers["queue"] = queue
    return _servers["server"], _servers["queue"]


@figure("api_list_p50_ms", "ms", "< 50", order=51)
def api_list_p50_ms(ctx: Context) -> Result:
    user = populate(ctx)
    server, _ = api_server(ctx)
    session = Session(server.url, user)
    count = 20 if ctx.quick else 200
    lists, pings = [], []
    for index in range(count):
        pings.append(session.timed("GET", "/bench/ping/"))
        page = 1 + index % 50
        lists.append(session.timed("GET", "/api/splits/", params={"page": page}))
    p50, base = median(lists), median(pings)
    return Result(
        p50,
        f"SELECT-1 view {base:.1f} ms",
        f"GET /api/splits/ (20 per page, pages 1-50) of a user with {JOBS} jobs over HTTP, "
        f"session auth, gunicorn 2 sync workers; p50 of {count}, p90 "
        f"{sorted(lists)[int(0.9 * count)]:.1f} ms; list - baseline = {p50 - base:.1f} ms",
        met=p50 < 50,
    )


@figure("api_create_p50_ms", "ms", "(no goal; reported)", order=52)
def api_create_p50_ms(ctx: Context) -> Result:
    import django_jobs

    user = populate(ctx)
    server, queue = api_server(ctx)
    session = Session(server.url, user)
    count = 10 if ctx.quick else 100
    wav = django_jobs.write_wav(ctx.path("api", "song.wav"), 2.0).read_bytes()
    creates, pings = [], []
    for index in range(count):
        pings.append(session.timed("GET", "/bench/ping/"))
        files = {"audio": (f"song-{index}.wav", wav, "audio/wav")}
        creates.append(session.timed("POST", "/api/splits/", files=files))
    ctx.purge_queue(queue)
    p50, base = median(creates), median(pings)
    return Result(
        p50,
        f"SELECT-1 view {base:.1f} ms",
        f"POST /api/splits/ with a 2 s WAV ({len(wav) / 1e3:.0f} kB, multipart) over HTTP: "
        f"validated, stored, job created, submit task sent to Redis; p50 of {count}, p90 "
        f"{sorted(creates)[int(0.9 * count)]:.1f} ms",
        met=None,
    )
