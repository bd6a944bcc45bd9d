"""URLs of the split API; include under any prefix (``path("api/", include(...))``).

* the root (``GET``): links to everything below;
* ``splits/`` (GET list, POST create), ``splits/<id>/``, ``splits/<id>/retry/``,
  ``splits/<id>/cancel/``, ``splits/<id>/stems/<name>/``;
* ``splits/uploads/`` (POST): a direct-upload ticket (see :mod:`django_aistemsplitter.tickets`);
* ``schema/``: the OpenAPI 3 schema (YAML; ``?format=json`` for JSON); public,
  like the root and the Swagger page: they describe the API and hold no data;
* ``schema/swagger/``: Swagger UI on that schema, from the app's own static files
  (needs ``"drf_spectacular_sidecar"`` in ``INSTALLED_APPS``).
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from django_aistemsplitter import __version__
from django_aistemsplitter.api.swagger import swagger_ui
from django_aistemsplitter.api.views import APIRootView, SplitJobViewSet

app_name = "aistemsplitter_api"

router = SimpleRouter()
router.register("splits", SplitJobViewSet, basename="split")

urlpatterns = [
    path("", APIRootView.as_view(), name="root"),
    path(
        "schema/",
        SpectacularAPIView.as_view(
            custom_settings={
                "TITLE": "django-aistemsplitter API",
                "DESCRIPTION": "Split songs into stems: start, follow and download splits.",
                "VERSION": __version__,
                "PREPROCESSING_HOOKS": ["django_aistemsplitter.api.schema.only_this_api"],
            },
        ),
        name="schema",
    ),
    path(
        "schema/swagger/",
        swagger_ui,
        {"schema_url_name": "schema"},
        name="swagger-ui",
    ),
    *router.urls,
]
