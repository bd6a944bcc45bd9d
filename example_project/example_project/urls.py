"""URLs: the admin, the webhook receiver, the REST API and the music pages."""

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path

urlpatterns: list[URLPattern | URLResolver] = [
    path("admin/", admin.site.urls),
    path("aistemsplitter/", include("django_aistemsplitter.urls")),
    path("api/", include("django_aistemsplitter.api.urls")),
    path("", include("music.urls")),
]
if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
