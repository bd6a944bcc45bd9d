"""Baselines served next to the app's views, by the same server.

* :func:`one_insert`, of ``webhook_vs_one_insert``: the least a signed receiver
  can do. It verifies the request exactly as the webhook view does (same header,
  same secret, same tolerance, through the same function), then runs one INSERT.
* :func:`ping`, of the API latencies: one ``SELECT 1`` behind the same middleware
  and session, i.e. what any request to this server costs.
"""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from django_aistemsplitter import contract
from django_aistemsplitter.client.signing import verify_signature
from django_aistemsplitter.conf import configured_webhook_secrets, get_setting
from django_aistemsplitter.exceptions import SignatureVerificationError

TABLE = "bench_delivery"
CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} "
    "(id bigserial PRIMARY KEY, received_at timestamptz NOT NULL DEFAULT now(), body text)"
)


@csrf_exempt
@require_POST
def one_insert(request: HttpRequest) -> HttpResponse:
    try:
        verify_signature(
            request.body,
            request.headers.get(contract.SIGNATURE_HEADER),
            configured_webhook_secrets(),
            tolerance=get_setting("WEBHOOK_TOLERANCE"),
        )
    except SignatureVerificationError:
        return HttpResponseBadRequest("invalid signature", content_type="text/plain")
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {TABLE} (body) VALUES (%s)", [request.body.decode()])
    return JsonResponse({"received": True})


@require_GET
def ping(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return JsonResponse({"user": request.user.get_username()})
