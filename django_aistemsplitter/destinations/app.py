"""Direct uploads to app (being written: see destinations/__init__.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django_aistemsplitter.destinations.base import Destination, UploadedAudio, UploadOffer

if TYPE_CHECKING:
    from django_aistemsplitter.models import SplitJob, UploadTicket


class AppDestination(Destination):
    name = "app"

    def prepare(self, ticket: UploadTicket) -> UploadOffer:
        raise NotImplementedError

    def open(self, ticket: UploadTicket) -> UploadedAudio:
        raise NotImplementedError

    def attach(self, ticket: UploadTicket, job: SplitJob) -> None:
        raise NotImplementedError

    def discard(self, ticket: UploadTicket) -> None:
        raise NotImplementedError
