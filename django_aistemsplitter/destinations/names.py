"""Where a direct upload is kept in ``STORAGE``: one name per ticket, fixed before any byte moves.

The destinations that put the bytes in our own storage (``s3``, ``app``) must
name the file when the ticket is issued, since the client sends it there
directly and nothing renames it afterwards. The name follows the layout of
every other source audio (:func:`~django_aistemsplitter.storage.audio_upload_to`:
``UPLOAD_TO``, then a folder of its own), with the ticket id instead of a job id,
so two tickets never collide and a purge removes exactly one folder.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from django.core.exceptions import SuspiciousFileOperation
from django.utils import timezone
from django.utils.text import get_valid_filename

from django_aistemsplitter.conf import get_setting

if TYPE_CHECKING:
    from django_aistemsplitter.models import UploadTicket

__all__ = ["DIRECT_FOLDER", "direct_upload_name"]

#: The folder under ``UPLOAD_TO`` that holds direct uploads, one sub-folder per ticket.
DIRECT_FOLDER = "direct"

#: Longest file name kept (``SplitJob.audio`` stores 500 characters in all).
_MAX_NAME = 200


def _safe_name(filename: str) -> str:
    base = posixpath.basename(filename.replace("\\", "/"))
    stem, ext = posixpath.splitext(base)
    if len(base) > _MAX_NAME:
        base = stem[: _MAX_NAME - len(ext[:20])] + ext[:20]
    try:
        return get_valid_filename(base) or "audio"
    except SuspiciousFileOperation:  # "." or "..": nothing usable is left
        return "audio"


def direct_upload_name(ticket: UploadTicket) -> str:
    """``<UPLOAD_TO>/direct/<ticket id>/<sanitised name>``: the name in ``STORAGE``.

    ``UPLOAD_TO``'s date placeholders are filled in now, when the ticket is
    issued, like a multipart upload's are when it is stored.
    """
    prefix = timezone.now().strftime(str(get_setting("UPLOAD_TO"))).strip("/")
    return posixpath.join(prefix, DIRECT_FOLDER, str(ticket.pk), _safe_name(ticket.filename))
