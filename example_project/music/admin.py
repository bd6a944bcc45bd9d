from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from django_aistemsplitter.registry import split_jobs_for
from music.models import Track


@admin.register(Track)
class TrackAdmin(admin.ModelAdmin):
    list_display = ("title", "audio", "latest_split", "created_at")
    search_fields = ("title",)
    readonly_fields = ("latest_split",)

    @admin.display(description="latest split")
    def latest_split(self, track: Track) -> str:
        if track.pk is None:
            return "-"
        job = split_jobs_for(track).first()
        if job is None:
            return "-"
        url = reverse("admin:aistemsplitter_splitjob_change", args=[job.pk])
        return format_html('<a href="{}">{}</a>', url, job.get_status_display())
