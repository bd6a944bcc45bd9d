"""The types every direct-upload destination shares (see :mod:`.destinations`)."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, ClassVar

from django.core.files import File

if TYPE_CHECKING:
    from django_aistemsplitter.backends import BaseBackend
    from django_aistemsplitter.models import SplitJob, UploadTicket

__all__ = ["Destination", "NotUploadedError", "UploadOffer", "UploadedAudio"]


@dataclass(frozen=True)
class UploadOffer:
    """How to send the bytes: what ``POST /splits/uploads/`` answers with.

    ``method`` is ``PUT`` (the body is the file) or ``POST`` with a
    ``multipart/form-data`` body: ``fields`` first, in order, then the file as
    the part named ``file_field``. ``headers`` go with the request either way.
    """

    url: str
    method: str
    headers: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, str] = field(default_factory=dict)
    file_field: str = ""


class NotUploadedError(Exception):
    """Nothing (or not all of it) has arrived where the ticket said to send it."""


class UploadedAudio(File):
    """What was uploaded, opened for validation: a seekable reader with a known size.

    ``size`` comes from the destination (a HEAD, a stat, the bytes received), so
    checking the size never reads the file; the reader fetches only the ranges
    the decoder asks for.
    """

    def __init__(self, file: IO[bytes], name: str, size: int) -> None:
        super().__init__(file, name=name)
        self._declared_size = size

    @property
    def size(self) -> int:
        return self._declared_size


class Destination(abc.ABC):
    """One place direct uploads go. Subclasses are registered under :attr:`name`."""

    name: ClassVar[str]

    @classmethod
    def suits(cls, backend: BaseBackend) -> bool:
        """Whether this destination is the natural one for ``backend`` and the storage."""
        return False

    @abc.abstractmethod
    def prepare(self, ticket: UploadTicket) -> UploadOffer:
        """Reserve the upload's place on the unsaved ``ticket`` and say how to send to it.

        Sets ``ticket.storage_name`` or ``ticket.remote_upload``; the ticket is
        saved after this returns, so nothing here may depend on its row.
        """

    @abc.abstractmethod
    def open(self, ticket: UploadTicket) -> UploadedAudio:
        """The uploaded audio, for validation; :class:`NotUploadedError` when it is not there."""

    @abc.abstractmethod
    def attach(self, ticket: UploadTicket, job: SplitJob) -> None:
        """Point the unsaved ``job`` at the uploaded audio without copying it."""

    @abc.abstractmethod
    def discard(self, ticket: UploadTicket) -> None:
        """Delete what the ticket uploaded (refused or expired unused); safe to repeat."""
