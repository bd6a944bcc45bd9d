"""The sandbox's options: one argparse definition shared by the CLI and the Django command.

Both entry points call :func:`add_arguments` on their own parser and turn the parsed
namespace into a :class:`SandboxConfig` with :func:`config_from_options`, so an option
is declared exactly once.
"""

from __future__ import annotations

import argparse
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django_aistemsplitter import contract

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_ENGINE = "spectral"
#: Large enough that nobody runs out during development.
DEFAULT_CREDITS = 10_000_000
DEFAULT_MAX_UPLOAD_BYTES = 500 * 1000 * 1000


@dataclass
class SandboxConfig:
    """Everything the server needs; defaults match the CLI's."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str = ""
    webhook_secret: str = ""
    engine: str = DEFAULT_ENGINE
    data_dir: Path | None = None
    public_url: str | None = None
    workers: int = 2
    credits: int = DEFAULT_CREDITS
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_direct_bytes: int = contract.MAX_DIRECT_BYTES
    url_ttl_seconds: float = 3600.0
    processing_seconds: float = 0.0
    webhook_format: str = "full"
    webhook_retry_base: float = 1.0
    webhook_max_attempts: int = 6
    webhook_timeout: float = 10.0
    duplicate_webhooks: int = 0
    drop_webhooks: bool = False
    reorder_webhooks: bool = False
    reorder_batch: int = 2
    reorder_window: float = 2.0
    fail_rate: float = 0.0
    retry_after_seconds: int = 1
    latency_ms: int = 0
    truncate_rate: float = 0.0
    download_kbps: int = 0
    seed: int | None = None
    quiet: bool = False
    #: Which of ``api_key``/``webhook_secret`` were generated (printed once at start).
    generated: tuple[str, ...] = field(default=())


def _rate(value: str) -> float:
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not a rate between 0 and 1")
    return rate


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0")
    return number


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return number


def _non_negative_float(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare every sandbox option on ``parser`` (the CLI's or Django's)."""
    server = parser.add_argument_group("server")
    server.add_argument("--host", default=DEFAULT_HOST, help="address to bind (loopback)")
    server.add_argument("--port", type=_non_negative_int, default=DEFAULT_PORT, help="0 = any")
    server.add_argument("--api-key", default=None, help=f"default ${contract.API_KEY_ENV}")
    server.add_argument(
        "--webhook-secret", default=None, help=f"default ${contract.WEBHOOK_SECRET_ENV}"
    )
    server.add_argument("--engine", default=DEFAULT_ENGINE, help="separation engine name")
    server.add_argument("--data-dir", type=Path, default=None, help="default: a temp dir")
    server.add_argument("--public-url", default=None, help="base of URLs handed out")
    server.add_argument("--workers", type=_positive_int, default=2, help="separation threads")
    server.add_argument("--quiet", action="store_true", help="no per-request log lines")

    account = parser.add_argument_group("account and limits")
    account.add_argument("--credits", type=_non_negative_int, default=DEFAULT_CREDITS)
    account.add_argument("--max-upload-bytes", type=_positive_int, default=DEFAULT_MAX_UPLOAD_BYTES)
    account.add_argument(
        "--max-direct-bytes", type=_positive_int, default=contract.MAX_DIRECT_BYTES
    )
    account.add_argument("--url-ttl-seconds", type=_non_negative_float, default=3600.0)
    account.add_argument(
        "--processing-seconds",
        type=_non_negative_float,
        default=0.0,
        help="each split takes at least this long",
    )

    hooks = parser.add_argument_group("webhooks")
    hooks.add_argument("--webhook-format", choices=("full", "thin"), default="full")
    hooks.add_argument("--webhook-retry-base", type=_non_negative_float, default=1.0)
    hooks.add_argument("--webhook-max-attempts", type=_positive_int, default=6)
    hooks.add_argument("--webhook-timeout", type=_non_negative_float, default=10.0)

    faults = parser.add_argument_group("injected faults")
    faults.add_argument(
        "--duplicate-webhooks",
        type=_non_negative_int,
        default=0,
        help="deliver each event N extra times",
    )
    faults.add_argument("--drop-webhooks", action="store_true", help="never deliver events")
    faults.add_argument(
        "--reorder-webhooks",
        action="store_true",
        help="hold events and release each batch in reverse order, copies last",
    )
    faults.add_argument("--reorder-batch", type=_positive_int, default=2)
    faults.add_argument("--reorder-window", type=_non_negative_float, default=2.0)
    faults.add_argument("--fail-rate", type=_rate, default=0.0, help="API calls -> 429/500")
    faults.add_argument("--retry-after-seconds", type=_non_negative_int, default=1)
    faults.add_argument("--latency-ms", type=_non_negative_int, default=0)
    faults.add_argument("--truncate-rate", type=_rate, default=0.0, help="cut stem downloads")
    faults.add_argument(
        "--download-kbps",
        type=_non_negative_int,
        default=0,
        help="stream stem files at N kilobits/s (0 = full speed; API calls unaffected)",
    )
    faults.add_argument("--seed", type=int, default=None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m django_aistemsplitter.sandbox",
        description="A local stand-in for the AiStemSplitter API, with fault switches.",
    )
    add_arguments(parser)
    return parser


def config_from_options(options: Mapping[str, Any]) -> SandboxConfig:
    """Build a config from parsed options, filling key and secret from env or at random."""
    known = {name for name in SandboxConfig.__dataclass_fields__ if name != "generated"}
    values = {k: v for k, v in options.items() if k in known and v is not None}
    generated: list[str] = []
    if not values.get("api_key"):
        values["api_key"] = os.environ.get(contract.API_KEY_ENV) or ""
        if not values["api_key"]:
            values["api_key"] = "ast_test_" + secrets.token_hex(16)
            generated.append("api_key")
    if not values.get("webhook_secret"):
        values["webhook_secret"] = os.environ.get(contract.WEBHOOK_SECRET_ENV) or ""
        if not values["webhook_secret"]:
            values["webhook_secret"] = "whsec_" + secrets.token_hex(16)
            generated.append("webhook_secret")
    return SandboxConfig(**values, generated=tuple(generated))
