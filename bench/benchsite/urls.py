from django.urls import include, path

from benchsite import views

urlpatterns = [
    path("aistemsplitter/", include("django_aistemsplitter.urls")),
    path("api/", include("django_aistemsplitter.api.urls")),
    path("bench/one-insert/", views.one_insert, name="one-insert"),
    path("bench/ping/", views.ping, name="ping"),
]
