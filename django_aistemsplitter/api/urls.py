"""URLs of the split API; include under any prefix (``path("api/", include(...))``).

* ``splits/`` (GET list, POST create), ``splits/<id>/``, ``splits/<id>/retry/``,
  ``splits/<id>/cancel/``, ``splits/<id>/stems/<name>/``;
* ``schema/``: the OpenAPI 3 schema (YAML; ``?format=json`` for JSON).
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from django_aistemsplitter import __version__
from django_aistemsplitter.api.views import SplitJobViewSet

app_name = "aistemsplitter_api"

router = SimpleRouter()
router.register("splits", SplitJobViewSet, basename="split")

urlpatterns = [
    path(
        "schema/",
        SpectacularAPIView.as_view(
            custom_settings={
                "TITLE": "django-aistemsplitter API",
                "DESCRIPTION": "Split songs into stems: start, follow and download splits.",
                "VERSION": __version__,
                "PREPROCESSING_HOOKS": ["django_aistemsplitter.api.schema.only_this_api"],
            }
        ),
        name="schema",
    ),
    *router.urls,
]
