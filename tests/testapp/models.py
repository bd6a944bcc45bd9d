"""A user's own model, as a project would have it, for auto-split tests."""

from __future__ import annotations

from django.db import models


class Track(models.Model):
    title = models.CharField(max_length=200)
    audio = models.FileField(upload_to="tracks/", blank=True)

    def __str__(self) -> str:
        return self.title
