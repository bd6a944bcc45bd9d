"""The refusal of an upload larger than its ticket declared, shared by the destinations.

A destination's URL is meant to refuse more bytes than the ticket's size (an S3
POST policy's ``content-length-range``, the service's declared
``contentLength``), but an S3-compatible store may not enforce the policy (moto
does not) and a service may be lax, so what arrived is checked again when the
ticket is redeemed, from its size alone, before anything is decoded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from django_aistemsplitter.validation import InvalidSplitRequest

if TYPE_CHECKING:
    from django_aistemsplitter.models import UploadTicket

__all__ = ["larger_than_declared"]


def larger_than_declared(ticket: UploadTicket, size: int, *, deleted: bool) -> InvalidSplitRequest:
    """``too_large`` on ``upload``: ``size`` bytes arrived for a ticket of ``ticket.size``.

    ``deleted`` says whether the destination threw the file away (then the
    client must upload again with a new ticket).
    """
    message = (
        _(
            "The uploaded file is %(size)s, larger than the %(declared)s its ticket was "
            "issued for; it was deleted. Ask for a ticket with the file's real size."
        )
        if deleted
        else _(
            "The uploaded file is %(size)s, larger than the %(declared)s its ticket was "
            "issued for. Ask for a ticket with the file's real size."
        )
    )
    return InvalidSplitRequest(
        message,
        code="too_large",
        field="upload",
        params={"size": filesizeformat(size), "declared": filesizeformat(int(ticket.size))},
    )
