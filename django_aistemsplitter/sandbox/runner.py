"""Running the sandbox in the foreground: what the CLI and the management command share."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType
from typing import Protocol

from django_aistemsplitter.engines import get_engine_class
from django_aistemsplitter.exceptions import ConfigurationError
from django_aistemsplitter.sandbox.config import SandboxConfig
from django_aistemsplitter.sandbox.server import SandboxServer

LOG_FORMAT = "%(asctime)s sandbox %(levelname)s %(message)s"


class Writer(Protocol):
    """stderr, or Django's ``OutputWrapper`` around it."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


def _say(out: Writer, text: str) -> None:
    out.write(text + "\n")
    out.flush()


def configure_logging(quiet: bool, stream: Writer = sys.stderr) -> None:
    """One line per request on stderr (``--quiet``: warnings only)."""
    logger = logging.getLogger("django_aistemsplitter.sandbox")
    if not logger.handlers:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


def _check_engine(name: str, out: Writer) -> None:
    """Warn early when the engine cannot load; splits would all fail."""
    try:
        get_engine_class(name)
    except ConfigurationError as exc:
        _say(out, f"WARNING: {exc} -- every split will fail.")


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(config: SandboxConfig, out: Writer = sys.stderr) -> None:
    """Serve until SIGINT/SIGTERM; prints where it listens and any generated credential."""
    configure_logging(config.quiet, out)
    _check_engine(config.engine, out)
    server = SandboxServer(config).bind()
    _say(out, f"AiStemSplitter sandbox listening on {server.base_url} (engine {config.engine})")
    if "api_key" in config.generated:
        _say(out, f"generated API key: {config.api_key}")
    if "webhook_secret" in config.generated:
        _say(out, f"generated webhook secret: {config.webhook_secret}")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        server.serve_bound()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
