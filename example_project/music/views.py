from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from django_aistemsplitter.registry import split_jobs_for, stems_for
from music.models import Track


def track_list(request: HttpRequest) -> HttpResponse:
    return render(request, "music/track_list.html", {"tracks": Track._default_manager.all()})


def track_detail(request: HttpRequest, pk: int) -> HttpResponse:
    track = get_object_or_404(Track, pk=pk)
    return render(
        request,
        "music/track_detail.html",
        {"track": track, "job": split_jobs_for(track).first(), "stems": stems_for(track)},
    )
