"""Client of the AiStemSplitter HTTP API, blocking and asyncio; no Django needed.

>>> from django_aistemsplitter.client import AiStemSplitter
>>> with AiStemSplitter() as client:  # key from $AISTEMSPLITTER_API_KEY
...     split = client.wait(client.submit(input=client.upload_file("song.wav")).id)
...     paths = client.download(split, "stems/")

This package imports and works where Django is not installed: its errors live
in :mod:`.exceptions` on plain Python bases, and everything is exported here.
Both clients run the same sans-IO operations (``_core``); see ``_effects`` for
how the drivers perform them. Webhook receivers need no client at all:
:func:`verify_signature` then :func:`parse_event`.
"""

from __future__ import annotations

from django_aistemsplitter.client._async import (
    AsyncAiStemSplitter,
    AsyncStemSplitter,
    adownload_file,
)
from django_aistemsplitter.client._sync import AiStemSplitter, StemSplitter, download_file
from django_aistemsplitter.client.downloads import Downloaded, DownloadPolicy, PolicyNames
from django_aistemsplitter.client.events import parse_event

# The error classes, whose names are listed once, in ``_errors.__all__``: ``*``
# brings them, and ``__all__ as __all__`` is the form mypy reads as "exported
# here too" (see client/exceptions.py); ``__all__`` below extends that list.
from django_aistemsplitter.client.exceptions import *  # noqa: F403
from django_aistemsplitter.client.exceptions import __all__ as __all__
from django_aistemsplitter.client.polling import (
    PollSchedule,
    RetryPolicy,
    cap_retry_after,
    parse_retry_after,
)
from django_aistemsplitter.client.signing import parse_secrets, sign_payload, verify_signature
from django_aistemsplitter.client.types import (
    Credits,
    Split,
    SplitError,
    SplitPage,
    Upload,
    UploadedInput,
    WebhookEvent,
)

# The errors' names (imported above as ``__all__``), then the client's own.
__all__ = [
    *__all__,
    "AiStemSplitter",
    "AsyncAiStemSplitter",
    "AsyncStemSplitter",
    "Credits",
    "DownloadPolicy",
    "Downloaded",
    "PolicyNames",
    "PollSchedule",
    "RetryPolicy",
    "Split",
    "SplitError",
    "SplitPage",
    "StemSplitter",
    "Upload",
    "UploadedInput",
    "WebhookEvent",
    "adownload_file",
    "cap_retry_after",
    "download_file",
    "parse_event",
    "parse_retry_after",
    "parse_secrets",
    "sign_payload",
    "verify_signature",
]
