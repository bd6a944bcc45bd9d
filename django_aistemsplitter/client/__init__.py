"""Client of the AiStemSplitter HTTP API, blocking and asyncio; no Django settings needed.

>>> from django_aistemsplitter.client import AiStemSplitter
>>> with AiStemSplitter() as client:  # key from $AISTEMSPLITTER_API_KEY
...     split = client.wait(client.submit(input=client.upload_file("song.wav")).id)
...     paths = client.download(split, "stems/")

Both clients run the same sans-IO operations (``_core``); see ``_effects`` for
how the drivers perform them.
"""

from __future__ import annotations

from django_aistemsplitter.client._async import AsyncAiStemSplitter, AsyncStemSplitter
from django_aistemsplitter.client._sync import AiStemSplitter, StemSplitter
from django_aistemsplitter.client.polling import PollSchedule, RetryPolicy
from django_aistemsplitter.client.signing import sign_payload, verify_signature
from django_aistemsplitter.client.types import (
    Credits,
    Split,
    SplitError,
    SplitPage,
    Upload,
    UploadedInput,
    WebhookEvent,
)

__all__ = [
    "AiStemSplitter",
    "AsyncAiStemSplitter",
    "AsyncStemSplitter",
    "Credits",
    "PollSchedule",
    "RetryPolicy",
    "Split",
    "SplitError",
    "SplitPage",
    "StemSplitter",
    "Upload",
    "UploadedInput",
    "WebhookEvent",
    "sign_payload",
    "verify_signature",
]
