"""A local stand-in for the AiStemSplitter API, with switches that inject faults.

Run it with ``python -m django_aistemsplitter.sandbox`` (or the
``aistemsplitter_sandbox`` management command), or in-process::

    with SandboxServer(SandboxConfig(port=0, api_key="k", engine="passthrough")) as server:
        ...  # server.base_url ends in /v1 like the hosted API's

It needs no Django settings; the engine is created only when the first split runs.
"""

from __future__ import annotations

from django_aistemsplitter.sandbox.config import SandboxConfig, add_arguments, config_from_options
from django_aistemsplitter.sandbox.server import SandboxServer

__all__ = ["SandboxConfig", "SandboxServer", "add_arguments", "config_from_options"]
