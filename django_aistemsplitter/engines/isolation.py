"""Run one file separation in a child process, so a crashing engine cannot take the worker down.

Engines run native code (NumPy, libsndfile, torch). A segfault there, or the
kernel's out-of-memory killer, ends the process it happens in. Inside a Celery
worker that would be the worker, and with late acknowledgement the message goes
back to the queue to kill the next one. :func:`separate_in_child` therefore runs
:func:`~.files.separate_file` in a fresh interpreter (``python -m`` this module)
and turns the child's death into an :class:`EngineCrashedError`: the job fails,
the worker lives on.

The child speaks JSON lines on its original stdout (whatever the engine prints
goes to stderr): ``{"progress": f}`` as work advances, then one
``{"result": ...}`` or ``{"error": ...}``. The parent passes progress on, and
when the child is quiet it calls the progress callback again with the last
fraction every ``idle_every`` seconds, so the caller can record a heartbeat (and
stop the run by raising from the callback: the child is then killed). The child
exits by itself when its stdin reaches end of file, i.e. when the parent is gone.

The child does not set up Django: engines are plain computation, and their
options arrive in the request.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from django_aistemsplitter.engines.base import get_engine_class
from django_aistemsplitter.engines.files import SeparationResult, separate_file
from django_aistemsplitter.exceptions import AiStemSplitterError, EngineError

__all__ = ["EngineCrashedError", "separate_in_child"]

#: How much of the child's stderr a crash report quotes (the end, where the error is).
STDERR_TAIL = 2000
#: Smallest progress step the child reports (engines may report per window).
PROGRESS_STEP = 0.01

_SIGNAL_HINTS = {
    signal.SIGSEGV: "a crash in native code",
    signal.SIGBUS: "a crash in native code",
    signal.SIGILL: "a crash in native code",
    signal.SIGFPE: "a crash in native code",
    signal.SIGABRT: "aborted by native code",
    signal.SIGKILL: "killed, most likely by the out-of-memory killer",
}


class EngineCrashedError(EngineError):
    """The engine's process died (signal, out of memory, or an exit without a result)."""

    code = "ENGINE_CRASHED"


# --- the parent --------------------------------------------------------------------


def _child_env(engine: str) -> dict[str, str]:
    """The worker's environment, with its import path, so dotted engine paths resolve.

    Adds the engine's :attr:`~.base.Engine.process_env` where the worker's
    environment has no value of its own: a site's own tuning passes through
    unchanged. (An engine that cannot be found adds nothing here; the child
    reports why it cannot load it.)
    """
    try:
        wanted = dict(get_engine_class(engine).process_env)
    except (AiStemSplitterError, ImportError):
        wanted = {}
    env = {**wanted, **os.environ}
    paths = [p for p in sys.path if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _read_lines(stream: IO[bytes], lines: queue.Queue[bytes | None]) -> None:
    try:
        for line in stream:
            lines.put(line)
    finally:
        lines.put(None)


def _stderr_tail(log: IO[bytes]) -> str:
    log.seek(0, os.SEEK_END)
    size = log.tell()
    log.seek(max(0, size - STDERR_TAIL))
    return log.read().decode("utf-8", "replace").strip()


def _death(returncode: int, log: IO[bytes]) -> EngineCrashedError:
    if returncode < 0:
        try:
            sig = signal.Signals(-returncode)
            name = sig.name
            hint = _SIGNAL_HINTS.get(sig, "killed by a signal")
        except ValueError:
            name, hint = f"signal {-returncode}", "killed by a signal"
        message = f"the engine process died from {name} ({hint})"
    else:
        message = f"the engine process exited with status {returncode} and no result"
    tail = _stderr_tail(log)
    if tail:
        message += f"; its last output: {tail[-500:]}"
    return EngineCrashedError(message)


def _rebuild_error(error: Mapping[str, Any]) -> BaseException:
    """The child's exception as ours: the package's own error class where it names one."""
    kind = str(error.get("type", "Exception"))
    message = str(error.get("message", ""))
    module_name, _, name = kind.rpartition(".")
    if module_name.startswith("django_aistemsplitter."):
        try:
            cls = getattr(importlib.import_module(module_name), name, None)
        except ImportError:
            cls = None
        if isinstance(cls, type) and issubclass(cls, AiStemSplitterError):
            with contextlib.suppress(TypeError):
                return cls(message)
    if kind == "builtins.MemoryError":
        return EngineError(f"the engine ran out of memory: {message}")
    return EngineError(f"{name or kind}: {message}")


def separate_in_child(
    engine: str,
    engine_options: Mapping[str, Any],
    source: str | Path,
    out_dir: str | Path,
    model: str,
    output_format: str,
    progress: Callable[[float], None],
    *,
    idle_every: float = 5.0,
) -> SeparationResult:
    """:func:`~.files.separate_file` with ``get_engine(engine, **engine_options)``, in a child.

    Raises what the engine raised (as the package's error class when it is one,
    else :class:`EngineError`), or :class:`EngineCrashedError` when the child
    died. Whatever ``progress`` raises kills the child and propagates.
    """
    request = {
        "engine": engine,
        "options": dict(engine_options),
        "source": str(source),
        "out_dir": str(out_dir),
        "model": model,
        "output_format": output_format,
    }
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(  # noqa: S603 - this interpreter and module, no shell
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=_child_env(engine),
        )
        assert child.stdin is not None and child.stdout is not None
        lines: queue.Queue[bytes | None] = queue.Queue()
        reader = threading.Thread(
            target=_read_lines, args=(child.stdout, lines), name="engine-child-reader", daemon=True
        )
        reader.start()
        result: dict[str, Any] | None = None
        error: dict[str, Any] | None = None
        last = 0.0
        try:
            child.stdin.write(json.dumps(request).encode() + b"\n")
            child.stdin.flush()
            while True:
                try:
                    line = lines.get(timeout=idle_every)
                except queue.Empty:
                    progress(last)  # a sign of life while the engine is quiet
                    continue
                if line is None:
                    break
                message = json.loads(line)
                if "progress" in message:
                    last = float(message["progress"])
                    progress(last)
                elif "result" in message:
                    result = message["result"]
                elif "error" in message:
                    error = message["error"]
            returncode = child.wait()
        except BaseException:
            child.kill()
            child.wait()
            raise
        finally:
            with contextlib.suppress(OSError):
                child.stdin.close()
            reader.join(5)
            child.stdout.close()
        if error is not None:
            raise _rebuild_error(error)
        if result is None or returncode != 0:
            raise _death(returncode, log)
    return SeparationResult(
        stems={name: Path(path) for name, path in result["stems"].items()},
        model_ran=str(result["model_ran"]),
        duration=float(result["duration"]),
        sample_rate=int(result["sample_rate"]),
        channels=int(result["channels"]),
    )


# --- the child ---------------------------------------------------------------------


def _read_request() -> dict[str, Any]:
    """The request line, read from fd 0 itself (no buffered object a thread could hold)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(0, 65536)
        if not chunk:
            break
        data += chunk
    return dict(json.loads(data))


def _exit_when_orphaned() -> None:
    """End this process once the parent closes our stdin (or dies, which closes it)."""
    with contextlib.suppress(OSError):
        while os.read(0, 4096):
            pass
    os._exit(3)


def _run_child() -> int:
    # Protocol lines go to the original stdout; anything else printed goes to stderr.
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    request = _read_request()
    threading.Thread(target=_exit_when_orphaned, name="orphan-watch", daemon=True).start()

    def send(**message: Any) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    sent = [-1.0]

    def report(fraction: float) -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        if fraction - sent[0] >= PROGRESS_STEP or (fraction >= 1.0 > sent[0]):
            sent[0] = fraction
            send(progress=fraction)

    try:
        engine = get_engine_class(request["engine"])(**request["options"])
        result = separate_file(
            engine,
            request["source"],
            request["out_dir"],
            request["model"],
            request["output_format"],
            report,
        )
    except BaseException as exc:
        traceback.print_exc()
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
        send(error={"type": kind, "message": str(exc)})
        return 1
    send(
        result={
            "stems": {name: str(path) for name, path in result.stems.items()},
            "model_ran": result.model_ran,
            "duration": result.duration,
            "sample_rate": result.sample_rate,
            "channels": result.channels,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(_run_child())
