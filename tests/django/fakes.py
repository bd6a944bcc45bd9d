"""A third-party style backend: what a user writes by subclassing RemoteBackend.

It "submits" nothing and reports a succeeded split whose stems are whatever the
test puts in ``FakeRemoteBackend.stems``, to feed hostile input to ingestion.
"""

from __future__ import annotations

from typing import ClassVar

from django_aistemsplitter.backends import RemoteBackend
from django_aistemsplitter.client.types import Split
from django_aistemsplitter.models import SplitJob


class FakeRemoteBackend(RemoteBackend):
    name = "fake"
    stems: ClassVar[dict[str, str]] = {}

    @property
    def default_model(self) -> str:
        return "fake4"

    def available_models(self) -> list[str]:
        return ["fake4"]

    def submit(self, job: SplitJob) -> Split:
        return Split(id=f"fake_{job.pk.hex}", status="queued")

    def fetch(self, job: SplitJob) -> Split:
        return Split(id=job.remote_id, status="succeeded", stems=dict(self.stems), progress=1.0)
