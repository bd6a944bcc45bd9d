"""Figures of the webhook receiver: deliveries per second against one INSERT, and its queries.

The bench project runs under gunicorn (2 sync workers) on PostgreSQL and serves
both views. Every delivery is a signed ``split.succeeded`` event for a different
job waiting in ``submitted``, so each one is a real state change (the job moves
to ``downloading`` and an ingest task is sent to Redis, on a queue nobody
consumes, emptied afterwards). The baseline view verifies the same signature on
the same kind of body and runs one INSERT. Two client threads (one per server
worker) send a bounded number of requests over loopback; the two sides alternate
in rounds so a change in the machine's load hits both.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from typing import Any

import httpx
from harness import Context, Result, figure, median, profile_calls

SECRET = "whsec_bench_" + uuid.uuid4().hex
WEBHOOK_PATH = "/aistemsplitter/webhook/"
INSERT_PATH = "/bench/one-insert/"


def server_settings(queue: str) -> dict[str, Any]:
    return {
        "BACKEND": "hosted",
        "API_KEY": "ast_bench_unused",
        "BASE_URL": "http://127.0.0.1:9/v1",
        "WEBHOOK_SECRET": SECRET,
        "TASK_QUEUE": queue,
    }


def make_jobs(count: int) -> list[str]:
    """``count`` hosted jobs in ``submitted`` with remote ids; returns the remote ids."""
    from django_aistemsplitter.models import SplitJob, SplitStatus

    prefix = "split_bench" + uuid.uuid4().hex[:8]
    remote_ids = [f"{prefix}{i:06d}" for i in range(count)]
    SplitJob.objects.bulk_create(
        [
            SplitJob(
                backend="hosted",
                stem_model="htdemucs_ft",
                output_format="wav",
                status=SplitStatus.SUBMITTED,
                remote_id=remote_id,
                original_filename="bench.wav",
            )
            for remote_id in remote_ids
        ],
        batch_size=1000,
    )
    return remote_ids


def event_body(remote_id: str) -> bytes:
    """A full ``split.succeeded`` event as the service sends it."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    base = f"https://files.example.invalid/splits/{remote_id}"
    event = {
        "id": "evt_" + uuid.uuid4().hex,
        "type": "split.succeeded",
        "created": int(time.time()),
        "data": {
            "id": remote_id,
            "status": "succeeded",
            "stemModel": "htdemucs_ft",
            "outputFormat": "wav",
            "filename": "bench.wav",
            "durationSeconds": 180.0,
            "creditsUsed": 3,
            "progress": 1.0,
            "createdAt": now,
            "updatedAt": now,
            "stems": {
                name: f"{base}/{name}.wav?expires=1&signature=00"
                for name in ("vocals", "drums", "bass", "other")
            },
            "error": None,
            "metadata": {},
        },
    }
    return json.dumps(event, separators=(",", ":")).encode()


def signed(body: bytes) -> dict[str, str]:
    from django_aistemsplitter import contract
    from django_aistemsplitter.client.signing import sign_payload

    return {
        contract.SIGNATURE_HEADER: sign_payload(body, SECRET),
        "Content-Type": "application/json",
    }


def load(url: str, bodies: list[bytes], clients: int) -> tuple[float, Counter[int]]:
    """POST every body once with ``clients`` threads; (seconds, status code counts)."""
    codes: Counter[int] = Counter()
    lock = threading.Lock()
    queue = list(reversed(bodies))

    def work() -> None:
        with httpx.Client(timeout=30) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                response = http.post(url, content=body, headers=signed(body))
                with lock:
                    codes[response.status_code] += 1

    threads = [threading.Thread(target=work) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, codes


@figure("webhook_vs_one_insert", "x (deliveries/s)", ">= 0.5", order=40)
def webhook_vs_one_insert(ctx: Context) -> Result:
    ctx.django()
    from benchsite.views import TABLE
    from django.db import connection

    from django_aistemsplitter.models import SplitJob, SplitStatus, WebhookEvent

    queue = "bench-sink-" + uuid.uuid4().hex[:8]
    server = ctx.server(server_settings(queue), workers=2, name="gunicorn-webhooks")
    rounds, per_round = (2, 60) if ctx.quick else (5, 300)
    remote_ids = make_jobs(rounds * per_round)
    warm = [event_body("split_warmup") for _ in range(2 * server.workers)]
    load(server.url + INSERT_PATH, warm, server.workers)
    load(server.url + WEBHOOK_PATH, warm, server.workers)
    times = {"webhook": 0.0, "insert": 0.0}
    codes: Counter[str] = Counter()
    for index in range(rounds):
        chunk = remote_ids[index * per_round : (index + 1) * per_round]
        seconds, got = load(server.url + INSERT_PATH, [event_body(r) for r in chunk], 2)
        times["insert"] += seconds
        codes.update({f"insert {k}": v for k, v in got.items()})
        seconds, got = load(server.url + WEBHOOK_PATH, [event_body(r) for r in chunk], 2)
        times["webhook"] += seconds
        codes.update({f"webhook {k}": v for k, v in got.items()})
    ctx.purge_queue(queue)
    total = rounds * per_round
    moved = SplitJob.objects.filter(
        remote_id__in=remote_ids, status=SplitStatus.DOWNLOADING, progress=1.0
    ).count()
    recorded = WebhookEvent.objects.filter(remote_id__in=remote_ids).count()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {TABLE}")
        inserted = cursor.fetchone()[0]
    webhook_rate = total / times["webhook"]
    insert_rate = total / times["insert"]
    ratio = webhook_rate / insert_rate
    problems = ""
    if moved != total or recorded != total or codes.get("webhook 200") != total:
        problems = f"; CHECK: {moved} jobs moved, {recorded} events recorded, codes {dict(codes)}"
    return Result(
        ratio,
        f"one-INSERT view {insert_rate:.0f}/s",
        f"webhook view {webhook_rate:.0f} deliveries/s; {total} requests per side in {rounds} "
        f"alternating rounds, 2 client threads, gunicorn 2 sync workers, PostgreSQL; "
        f"{inserted - len(warm)} baseline rows inserted{problems}",
        met=ratio >= 0.5 and not problems,
    )


def _kind(sql: str) -> str:
    word = sql.lstrip().split(None, 1)[0].upper()
    return word if word in {"SAVEPOINT", "RELEASE", "SELECT", "INSERT", "UPDATE"} else "other"


@figure("webhook_queries", "queries", "<= 6", order=41)
def webhook_queries(ctx: Context) -> Result:
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    ctx.django()
    queue = "bench-sink-" + uuid.uuid4().hex[:8]
    counts, insert_counts = [], []
    kinds: Counter[str] = Counter()
    with override_settings(AISTEMSPLITTER=server_settings(queue)):
        client = Client()
        for remote_id in make_jobs(5):
            body = event_body(remote_id)
            headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed(body).items()}
            headers.pop("HTTP_CONTENT_TYPE")
            with CaptureQueriesContext(connection) as captured:
                response = client.post(
                    WEBHOOK_PATH, body, content_type="application/json", **headers
                )
            assert response.status_code == 200, response.content
            counts.append(len(captured))
            kinds = Counter(_kind(q["sql"]) for q in captured.captured_queries)
            with CaptureQueriesContext(connection) as captured:
                response = client.post(
                    INSERT_PATH, body, content_type="application/json", **headers
                )
            assert response.status_code == 200, response.content
            insert_counts.append(len(captured))
        bodies = iter([event_body(r) for r in make_jobs(50)] if ctx.profile_dir else [])

        def deliver() -> None:
            body = next(bodies)
            headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed(body).items()}
            headers.pop("HTTP_CONTENT_TYPE")
            client.post(WEBHOOK_PATH, body, content_type="application/json", **headers)

        profile_calls(ctx, "webhook-deliveries", deliver, 50)
    ctx.purge_queue(queue)
    value = median([float(c) for c in counts])
    breakdown = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    return Result(
        value,
        f"one-INSERT view {median([float(c) for c in insert_counts]):.0f}",
        f"per signed succeeded event for a known job (median of 5, in-process test client on "
        f"PostgreSQL, savepoints included): {breakdown}",
        met=value <= 6,
    )
