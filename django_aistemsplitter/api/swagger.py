"""Swagger UI for this API, served from the app's own static files.

The page's scripts and styles are the copy of Swagger UI shipped in
``drf-spectacular-sidecar`` (``"drf_spectacular_sidecar"`` in ``INSTALLED_APPS``
puts them among the static files), so the page makes no request to any other host
and works offline. It is a plain page: whoever may read the schema sees the API in
it, and "Try it out" sends the browser's session (with its CSRF token on writes).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

SIDECAR_DIR = "drf_spectacular_sidecar/swagger-ui-dist"


@require_safe
def swagger_ui(request: HttpRequest, schema_url_name: str) -> HttpResponse:
    """The Swagger UI page on the schema at ``schema_url_name`` (a URL name)."""
    namespace = request.resolver_match.namespace if request.resolver_match else ""
    name = f"{namespace}:{schema_url_name}" if namespace else schema_url_name
    context = {
        "title": "django-aistemsplitter API",
        "assets": SIDECAR_DIR,
        "ui_config": {
            "url": f"{reverse(name)}?format=json",
            "dom_id": "#swagger-ui",
            "deepLinking": True,
            # No "valid" badge: Swagger UI would fetch it from the validator's host.
            "validatorUrl": None,
        },
        "csrf": {"header": "X-CSRFToken", "token": get_token(request)},
    }
    return render(request, "aistemsplitter/swagger_ui.html", context)
