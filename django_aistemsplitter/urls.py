"""URLs of django-aistemsplitter.

Include them under a prefix of your choice::

    path("aistemsplitter/", include("django_aistemsplitter.urls"))

and the webhook receiver is ``/aistemsplitter/webhook/`` (``aistemsplitter:webhook``);
``/aistemsplitter/uploads/<ticket id>`` (``aistemsplitter:direct-upload``) is the
signed, streaming upload view of direct uploads to the app itself
(:mod:`django_aistemsplitter.upload_view`).
"""

from __future__ import annotations

from django.urls import path

from django_aistemsplitter.backends.hosted.webhook import webhook_view
from django_aistemsplitter.upload_view import direct_upload_view

app_name = "aistemsplitter"

urlpatterns = [
    path("webhook/", webhook_view, name="webhook"),
    # No trailing slash: "curl -T song.wav URL" would add the file name to one.
    path("uploads/<uuid:ticket_id>", direct_upload_view, name="direct-upload"),
]
