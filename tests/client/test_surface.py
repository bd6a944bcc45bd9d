"""Both clients expose the same method names; the async ones are real coroutine functions."""

from __future__ import annotations

import inspect

from django_aistemsplitter.client import (
    AiStemSplitter,
    AsyncAiStemSplitter,
    AsyncStemSplitter,
    StemSplitter,
)

OPERATIONS = [
    "create_split",
    "get_split",
    "wait_for_split",
    "list_splits",
    "presign_upload",
    "upload_file",
    "download_stems",
    "get_credits",
    "submit",
    "get",
    "wait",
    "download",
]


def test_aliases() -> None:
    assert StemSplitter is AiStemSplitter
    assert AsyncStemSplitter is AsyncAiStemSplitter


def test_async_operations_are_coroutine_functions_and_sync_ones_are_not() -> None:
    sync, aio = AiStemSplitter("k", base_url="http://127.0.0.1:9/v1"), AsyncAiStemSplitter("k")
    for name in OPERATIONS:
        assert inspect.iscoroutinefunction(getattr(aio, name)), name
        assert not inspect.iscoroutinefunction(getattr(sync, name)), name
        # Same documented signature on both.
        assert inspect.signature(getattr(aio, name)) == inspect.signature(getattr(sync, name))
    assert not inspect.iscoroutinefunction(aio.verify_webhook)  # pure: nothing to await
    sync.close()
