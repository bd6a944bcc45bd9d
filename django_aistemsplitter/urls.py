"""URLs of django-aistemsplitter.

Include them under a prefix of your choice::

    path("aistemsplitter/", include("django_aistemsplitter.urls"))

and the webhook receiver is ``/aistemsplitter/webhook/`` (``aistemsplitter:webhook``).
"""

from __future__ import annotations

from django.urls import path

from django_aistemsplitter.backends.hosted.webhook import webhook_view

app_name = "aistemsplitter"

urlpatterns = [
    path("webhook/", webhook_view, name="webhook"),
]
