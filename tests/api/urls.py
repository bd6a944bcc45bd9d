"""tests.urls plus the REST API under ``api/`` (used with ``pytest.mark.urls``)."""

from django.urls import include, path

from tests.urls import urlpatterns as base_urlpatterns

urlpatterns = [
    *base_urlpatterns,
    path("api/", include("django_aistemsplitter.api.urls")),
]
