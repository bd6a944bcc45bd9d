from django.db import models
from django.urls import reverse


class Track(models.Model):
    title = models.CharField(max_length=200)
    audio = models.FileField(upload_to="tracks/")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("music:track", args=[self.pk])
