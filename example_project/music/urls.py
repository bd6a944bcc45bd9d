from django.urls import path

from music import views

app_name = "music"

urlpatterns = [
    path("", views.track_list, name="tracks"),
    path("tracks/<int:pk>/", views.track_detail, name="track"),
]
