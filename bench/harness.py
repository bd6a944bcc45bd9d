"""What every figure of ``bench/run.py`` shares: results, the registry, and the services.

A figure is a function ``(Context) -> Result`` registered under a fixed name with
its unit and goal. It measures its own baseline in the same run, because the
machines are shared and noisy: a ratio (or a difference) against something that
ran a moment earlier on the same machine survives the noise that an absolute
number does not. A figure that cannot run here raises :class:`Skip` with the
reason; the run records it and goes on.

:class:`Context` starts what the figures need, once, and stops it at the end:
the PostgreSQL database of the run (dropped and created afresh), the bench
Django project in this process, the sandbox API, a gunicorn server, Celery
workers and a moto S3 server. Each service is started by the first figure that
asks for it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common

ROOT = _common.ROOT
BENCH = ROOT / "bench"
DEFAULT_DB = "bench_aistemsplitter"
DEFAULT_BROKER = "redis://127.0.0.1:6379/14"


class Skip(Exception):
    """The figure cannot run here; the message says why (recorded in its notes)."""


@dataclass
class Result:
    """One measured figure. ``value`` is None only for a skipped figure."""

    value: float | None
    baseline: str
    notes: str = ""
    #: Whether the goal is met (None: no verdict, e.g. skipped).
    met: bool | None = None


@dataclass(frozen=True)
class Figure:
    name: str
    unit: str
    goal: str
    func: Callable[[Context], Result]
    #: Rough order of cost; figures run cheapest group first.
    order: int = 50


FIGURES: dict[str, Figure] = {}


def figure(name: str, unit: str, goal: str, order: int = 50) -> Callable[..., Any]:
    """Register ``func`` as the figure ``name`` (names are fixed across runs)."""

    def register(func: Callable[[Context], Result]) -> Callable[[Context], Result]:
        if name in FIGURES:
            raise ValueError(f"figure {name!r} registered twice")
        FIGURES[name] = Figure(name, unit, goal, func, order)
        return func

    return register


def at_most(value: float, limit: float, strict: bool = False) -> bool:
    return value < limit if strict else value <= limit


# --- processes ----------------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    """The environment of every child: the repo and ``bench/`` importable, one thread."""
    env = dict(os.environ)
    paths = [str(ROOT), str(BENCH)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Process:
    """A child process with its own log file, stopped (process group) at the end of the run."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)


@dataclass
class Server:
    """The bench project under gunicorn."""

    url: str
    workers: int
    process: Process


@dataclass
class Worker:
    queues: list[str]
    process: Process


@dataclass
class Context:
    """Options of the run and the services started so far."""

    quick: bool
    scratch: Path
    db_name: str = DEFAULT_DB
    broker_url: str = DEFAULT_BROKER
    #: ``--profile``: figures that can write a cProfile or py-spy profile put it here.
    profile_dir: Path | None = None
    stack: ExitStack = field(default_factory=ExitStack)
    _processes: list[Process] = field(default_factory=list)
    _django: bool = False
    _sandboxes: dict[str, Any] = field(default_factory=dict)
    _moto: str | None = None
    _log: Callable[[str], None] = print

    # -- generic ------------------------------------------------------------------

    def say(self, message: str) -> None:
        """Progress output (not a result line)."""
        self._log(message)

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> Process:
        log_path = self.scratch / f"{name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - closed when the run ends
        self.stack.callback(log.close)
        popen = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True
        )
        process = Process(name, popen, log_path)
        self._processes.append(process)
        return process

    def close(self) -> None:
        for process in reversed(self._processes):
            process.stop()
        self.stack.close()

    def path(self, *parts: str) -> Path:
        path = self.scratch.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    # -- PostgreSQL, Redis, Django --------------------------------------------------

    def redis(self) -> str:
        """The broker URL, or :class:`Skip` when Redis does not answer."""
        from urllib.parse import urlsplit

        parts = urlsplit(self.broker_url)
        if not port_open(parts.hostname or "127.0.0.1", parts.port or 6379):
            raise Skip(f"Redis is not reachable at {parts.hostname}:{parts.port}")
        return self.broker_url

    def postgres(self) -> None:
        host, port = os.environ.get("PGHOST", "127.0.0.1"), int(os.environ.get("PGPORT", "5432"))
        if not port_open(host, port):
            raise Skip(f"PostgreSQL is not reachable at {host}:{port}")

    def django(self) -> None:
        """Set up the bench project in this process on a fresh, migrated database."""
        if self._django:
            return
        self.postgres()
        self.redis()
        os.environ["DJANGO_SETTINGS_MODULE"] = "benchsite.settings"
        os.environ["AISTEMSPLITTER_BENCH_DB"] = self.db_name
        os.environ["AISTEMSPLITTER_BENCH_MEDIA"] = str(self.path("media", ".keep").parent)
        os.environ["CELERY_BROKER_URL"] = self.broker_url
        recreate_database(self.db_name)
        import django
        from django.core.management import call_command

        django.setup()
        self.say("  (migrating the bench database)")
        call_command("migrate", verbosity=0, interactive=False)
        from benchsite.views import CREATE_TABLE
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(CREATE_TABLE)
        self._django = True

    def bench_env(
        self, settings: dict[str, Any], storages: dict[str, Any] | None = None, **extra: str
    ) -> dict[str, str]:
        """Environment of a child running the bench project with ``AISTEMSPLITTER = settings``."""
        self.django()
        payload: dict[str, Any] = {"AISTEMSPLITTER": settings}
        if storages is not None:
            payload["STORAGES"] = storages
        return child_env(
            DJANGO_SETTINGS_MODULE="benchsite.settings",
            AISTEMSPLITTER_BENCH_DB=self.db_name,
            AISTEMSPLITTER_BENCH_MEDIA=os.environ["AISTEMSPLITTER_BENCH_MEDIA"],
            AISTEMSPLITTER_BENCH_SETTINGS=json.dumps(payload),
            CELERY_BROKER_URL=self.broker_url,
            **extra,
        )

    def purge_queue(self, queue: str) -> None:
        """Drop a Redis-backed Celery queue's pending messages (messages nobody consumes)."""
        import redis as redis_lib

        client = redis_lib.Redis.from_url(self.broker_url)
        client.delete(queue)

    def wait_drained(self, queue: str, timeout: float = 600.0) -> float:
        """Wait until ``queue`` is empty and no message is being worked on; ``time.time()``.

        kombu's Redis transport keeps a queue as a list and the messages workers
        hold (``acks_late``: until the task returns) in its ``unacked`` hash.
        """
        import redis as redis_lib

        client = redis_lib.Redis.from_url(self.broker_url)

        def drained() -> bool:
            return not client.llen(queue) and not client.hlen("unacked")

        wait_until(drained, timeout, f"queue {queue} to drain", interval=0.02)
        return time.time()

    # -- sandbox, gunicorn, workers, moto ------------------------------------------

    def sandbox(self, key: str, **options: Any) -> Any:
        """A sandbox API server (``tests/sandbox_process.py``), one per ``key``."""
        if key not in self._sandboxes:
            from tests.sandbox_process import start_sandbox

            data = self.path("sandbox-" + key, "data", ".keep").parent
            options.setdefault("quiet", True)
            sandbox = start_sandbox(data, **options)
            self.stack.callback(sandbox.stop)
            self._sandboxes[key] = sandbox
        return self._sandboxes[key]

    def server(self, settings: dict[str, Any], workers: int = 2, name: str = "gunicorn") -> Server:
        """The bench project under gunicorn (sync workers) with ``settings``."""
        if shutil.which("gunicorn", path=str(Path(sys.executable).parent)) is None:
            raise Skip("gunicorn is not installed (pip install -e '.[bench]')")
        port = free_port()
        args = [
            str(Path(sys.executable).parent / "gunicorn"),
            "benchsite.wsgi:application",
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--timeout",
            "120",
            # The project is loaded before the port opens and the workers fork
            # ready: no worker is still importing Django while a figure measures.
            "--preload",
        ]
        process = self.spawn(f"{name}-{port}", args, self.bench_env(settings))
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            if not process.alive():
                raise RuntimeError(f"gunicorn exited:\n{process.log()[-3000:]}")
            return port_open("127.0.0.1", port)

        wait_until(answers, 60, "gunicorn")
        return Server(url, workers, process)

    def worker(
        self,
        settings: dict[str, Any],
        queues: list[str],
        *,
        pool: str = "threads",
        concurrency: int = 1,
        name: str | None = None,
        storages: dict[str, Any] | None = None,
    ) -> Worker:
        """A ``celery worker`` of the bench project consuming ``queues``, ready when returned."""
        name = name or f"worker-{uuid.uuid4().hex[:8]}"
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "benchsite",
            "worker",
            f"--pool={pool}",
            "-c",
            str(concurrency),
            "-Q",
            ",".join(queues),
            "-n",
            f"{name}@%h",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "INFO",
        ]
        process = self.spawn(name, args, self.bench_env(settings, storages))

        def ready() -> bool:
            if not process.alive():
                raise RuntimeError(f"celery worker exited:\n{process.log()[-3000:]}")
            return " ready." in process.log()

        wait_until(ready, 90, f"celery worker {name}", interval=0.1)
        return Worker(queues, process)

    def moto(self) -> str:
        """A moto S3 server with the bench bucket; its endpoint URL."""
        if self._moto is None:
            exe = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
            if not Path(exe).exists():
                raise Skip("moto_server is not installed (pip install 'moto[server]')")
            port = free_port()
            process = self.spawn("moto", [exe, "-H", "127.0.0.1", "-p", str(port)], child_env())
            url = f"http://127.0.0.1:{port}"

            def answers() -> bool:
                if not process.alive():
                    raise RuntimeError(f"moto_server exited:\n{process.log()[-2000:]}")
                return port_open("127.0.0.1", port)

            wait_until(answers, 60, "moto_server")
            s3_client(url).create_bucket(Bucket=S3_BUCKET)
            self._moto = url
        return self._moto


S3_BUCKET = "aistemsplitter-bench"


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        region_name="us-east-1",
    )


def s3_storages(endpoint: str, location: str) -> dict[str, Any]:
    return {
        "default": {
            "BACKEND": "storages.backends.s3boto3.S3Boto3Storage",
            "OPTIONS": {
                "bucket_name": S3_BUCKET,
                "endpoint_url": endpoint,
                "access_key": "bench",
                "secret_key": "bench",
                "region_name": "us-east-1",
                "location": location,
            },
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def recreate_database(name: str) -> None:
    """Drop and create the run's database (its name must look like a bench database)."""
    if not name.replace("_", "").isalnum() or "bench" not in name:
        raise ValueError(f"refusing to recreate database {name!r}: name it like bench_*")
    import psycopg

    conninfo = {
        "host": os.environ.get("PGHOST", "127.0.0.1"),
        "port": os.environ.get("PGPORT", "5432"),
        "user": os.environ.get("PGUSER", "postgres"),
        "dbname": "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**conninfo) as conn:  # type: ignore[arg-type]
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


# --- small measuring helpers -------------------------------------------------------


def median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("median of nothing")
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as t: ...`` then ``t[0]`` is the elapsed wall time in seconds."""
    out: list[float] = []
    started = time.perf_counter()
    try:
        yield out
    finally:
        out.append(time.perf_counter() - started)


def profile_calls(ctx: Context, name: str, call: Callable[[], object], times: int) -> None:
    """With ``--profile``, run ``call`` ``times`` times under cProfile into ``DIR/name.prof``
    (and the 30 most expensive functions by cumulative time into ``DIR/name.txt``)."""
    if ctx.profile_dir is None:
        return
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(times):
        call()
    profiler.disable()
    profiler.dump_stats(ctx.profile_dir / f"{name}.prof")
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(30)
    (ctx.profile_dir / f"{name}.txt").write_text(text.getvalue())
