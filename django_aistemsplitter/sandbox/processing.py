"""Background separation: queued -> processing -> succeeded | failed.

A small thread pool runs the engine on each split's audio. ``--processing-seconds``
stretches a job so clients see queued and processing states and a progress that
moves; the engine itself is loaded once, lazily, so the server starts even when an
engine's optional dependencies are missing (the splits then fail, visibly).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django_aistemsplitter import contract
from django_aistemsplitter.engines import Engine, get_engine
from django_aistemsplitter.engines.files import separate_file
from django_aistemsplitter.exceptions import AudioDecodeError
from django_aistemsplitter.sandbox.emulate import hosted_separator
from django_aistemsplitter.sandbox.errors import SEPARATION_FAILED, code_for
from django_aistemsplitter.sandbox.store import Split, Store

logger = logging.getLogger("django_aistemsplitter.sandbox")

#: Share of ``--processing-seconds`` a split spends queued before it starts.
QUEUED_SHARE = 0.1
TICK_SECONDS = 0.05
#: Progress shown while the engine works; 1.0 only once the stems are written.
MAX_RUNNING_PROGRESS = 0.95

OnTerminal = Callable[[Split], None]


class Processor:
    """Runs splits on a thread pool and reports each terminal split to ``on_terminal``."""

    def __init__(
        self,
        store: Store,
        engine_name: str,
        data_dir: Path,
        workers: int,
        processing_seconds: float,
        on_terminal: OnTerminal,
    ) -> None:
        self._store = store
        self._engine_name = engine_name
        self._data_dir = data_dir
        self._processing_seconds = processing_seconds
        self._on_terminal = on_terminal
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="sandbox-split")
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()
        self._stopping = threading.Event()

    def submit(self, split_id: str) -> None:
        self._executor.submit(self._run_safely, split_id)

    def stop(self) -> None:
        self._stopping.set()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def engine(self) -> Engine:
        """The engine instance, created on first use (its heavy imports stay lazy)."""
        with self._engine_lock:
            if self._engine is None:
                self._engine = get_engine(self._engine_name)
            return self._engine

    def _run_safely(self, split_id: str) -> None:
        try:
            self._run(split_id)
        except Exception:  # a worker must never die silently
            logger.exception("split %s: unexpected sandbox error", split_id)
            self._finish_failed(split_id, code_for(500), "the sandbox failed unexpectedly")

    def _sleep_until(self, deadline: float, on_tick: Callable[[], None]) -> None:
        while not self._stopping.is_set() and time.monotonic() < deadline:
            on_tick()
            self._stopping.wait(min(TICK_SECONDS, max(0.0, deadline - time.monotonic())))

    def _run(self, split_id: str) -> None:
        started = time.monotonic()
        total = self._processing_seconds
        self._sleep_until(started + total * QUEUED_SHARE, lambda: None)
        self._store.update_split(split_id, status=contract.PROCESSING, progress=0.0)
        work_started = time.monotonic()
        work_seconds = total * (1 - QUEUED_SHARE)

        def report(engine_fraction: float) -> None:
            elapsed = time.monotonic() - work_started
            time_fraction = 1.0 if work_seconds <= 0 else elapsed / work_seconds
            fraction = min(engine_fraction, time_fraction)
            self._store.update_split(split_id, progress=MAX_RUNNING_PROGRESS * fraction)

        split = self._store.get_split(split_id)
        try:
            engine = self.engine()
            result = separate_file(
                engine,
                split.source,
                self._data_dir / "splits" / split_id,
                split.stem_model,
                split.output_format,
                report,
                separator=hosted_separator(engine, split.stem_model),
            )
        except AudioDecodeError as exc:
            self._finish_failed(split_id, code_for(422), str(exc))
            return
        except Exception as exc:
            logger.warning("split %s: engine %s failed: %s", split_id, self._engine_name, exc)
            self._finish_failed(split_id, SEPARATION_FAILED, f"separation failed: {exc}")
            return
        self._sleep_until(work_started + work_seconds, lambda: report(1.0))
        metadata = {
            **split.metadata,
            "sandbox": {"engine": self._engine_name, "model": result.model_ran},
        }
        done = self._store.update_split(
            split_id,
            status=contract.SUCCEEDED,
            progress=1.0,
            stems=dict(result.stems),
            metadata=metadata,
        )
        self._on_terminal(done)

    def _finish_failed(self, split_id: str, code: str, message: str) -> None:
        split = self._store.get_split(split_id)
        if split.status in contract.TERMINAL_STATUSES:
            return
        self._store.refund_credits(split.credits_used)
        metadata = {**split.metadata, "sandbox": {"engine": self._engine_name, "model": None}}
        done = self._store.update_split(
            split_id,
            status=contract.FAILED,
            error={"code": code, "message": message},
            credits_used=0,
            metadata=metadata,
        )
        self._on_terminal(done)
