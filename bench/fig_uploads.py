"""Figure of direct uploads: how long a Django worker is tied up by a 200 MB WAV.

The same file becomes a job four ways, over HTTP against the bench project under
gunicorn, one user with a session
cookie, jobs sent to a queue nobody consumes (only the upload is measured); one
sync worker, warmed up by one small file each way first (a long-lived worker
has imported and connected everything already):

* **multipart**, the way the API always took audio: ``POST /api/splits/`` with
  the file as ``multipart/form-data``; Django receives it, validates it and
  copies it to storage (into S3, or to ``FileSystemStorage``);
* **direct**, the ticket flow: ``POST /api/splits/uploads/``, the file sent where
  the ticket says, then ``POST /api/splits/`` with ``upload=<id>``. With S3
  storage the file goes to the bucket (moto's server) with the presigned POST
  and Django handles a few hundred bytes; with file storage it goes to the app's
  own streaming upload view: still a Django request, at constant memory.

**Busy time** is how long the gunicorn workers spent on the flow's requests: a
gunicorn config (written to the scratch directory) logs each request's time
from ``pre_request`` to ``post_request`` (the worker reads the body inside that
span, so receiving an upload counts) and its CPU time. The figure is the direct
flow's busy time on S3 as a percentage of the multipart flow's on the same
server and bucket, best of the runs of each, alternating; the other pairs are in
the notes.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import django_jobs
import httpx
from harness import (
    Context,
    Result,
    Server,
    Skip,
    figure,
    free_port,
    port_open,
    s3_storages,
    wait_until,
)

#: Bytes of the song of a full run (16-bit stereo WAV: about 19 minutes).
FULL_BYTES = 200_000_000
QUICK_BYTES = 50_000_000
CHUNK = 1024 * 1024

#: gunicorn server hooks: each request's busy span and CPU time, one JSON line each.
HOOKS = """
import json
import time

LOG = {log!r}


def pre_request(worker, req):
    req.bench_started = (time.perf_counter(), time.process_time())


def post_request(worker, req, environ, resp):
    wall, cpu = req.bench_started
    line = {{
        "method": req.method,
        "path": req.path,
        "busy": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "length": int(environ.get("CONTENT_LENGTH") or 0),
    }}
    with open(LOG, "a") as out:
        out.write(json.dumps(line) + "\\n")
"""


@dataclass
class Measured:
    """One flow: its wall time, and the workers' busy and CPU time over its requests."""

    wall: float
    busy: float
    cpu: float
    requests: int
    received: int  # body bytes Django was sent


@dataclass
class BusyServer:
    server: Server
    log: Path
    queue: str

    def offset(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def since(self, offset: int) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        with open(self.log, "rb") as lines:
            lines.seek(offset)
            return [json.loads(line) for line in lines.read().splitlines() if line.strip()]


def busy_server(ctx: Context, name: str, storages: dict[str, Any] | None) -> BusyServer:
    """The bench project under gunicorn with ``storages`` and the busy-time hooks."""
    gunicorn = Path(sys.executable).parent / "gunicorn"
    if not gunicorn.exists() and shutil.which("gunicorn") is None:
        raise Skip("gunicorn is not installed (pip install -e '.[bench]')")
    queue = "bench-uploads-sink-" + uuid.uuid4().hex[:8]
    settings = {
        "BACKEND": "local",
        "ENGINE": "passthrough",
        "TASK_QUEUE": queue,
        "MAX_UPLOAD_BYTES": 1024**3,
        "MAX_DURATION_SECONDS": 4 * 3600.0,
    }
    log = ctx.path("uploads", f"{name}-requests.jsonl")
    config = ctx.path("uploads", f"{name}-gunicorn.py")
    config.write_text(HOOKS.format(log=str(log)))
    port = free_port()
    args = [
        str(gunicorn),
        "benchsite.wsgi:application",
        "--config",
        str(config),
        "--workers",
        "1",
        "--worker-class",
        "sync",
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "--timeout",
        "300",
    ]
    process = ctx.spawn(f"gunicorn-{name}-{port}", args, ctx.bench_env(settings, storages))

    def answers() -> bool:
        if not process.alive():
            raise RuntimeError(f"gunicorn exited:\n{process.log()[-3000:]}")
        return port_open("127.0.0.1", port)

    wait_until(answers, 60, "gunicorn")
    return BusyServer(Server(f"http://127.0.0.1:{port}", 1, process), log, queue)


def chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as source:
        while block := source.read(CHUNK):
            yield block


def _check(response: httpx.Response, what: str) -> Any:
    if response.status_code >= 400:
        raise RuntimeError(f"{what}: {response.status_code} {response.text[:300]}")
    return response.json() if response.content else None


def multipart(session: Any, song: Path) -> str:
    with open(song, "rb") as audio:
        files = {"audio": (song.name, audio, "audio/wav")}
        job = _check(session.http.post("/api/splits/", files=files), "multipart create")
    return str(job["id"])


def direct(session: Any, song: Path) -> tuple[str, str]:
    """The ticket flow; the job id and the destination."""
    size = song.stat().st_size
    body = {"filename": song.name, "size": size, "content_type": "audio/wav"}
    ticket = _check(session.http.post("/api/splits/uploads/", json=body), "ticket")
    headers = dict(ticket["headers"])
    url = ticket["url"]
    if ticket["method"] == "PUT":
        headers["Content-Length"] = str(size)
        # This site's upload view wants the session; a bucket or the service do not.
        client = session.http if url.startswith(str(session.http.base_url)) else httpx
        response = client.put(url, content=chunks(song), headers=headers, timeout=600)
    else:
        with open(song, "rb") as audio:
            files = {ticket["file_field"]: (song.name, audio, "audio/wav")}
            response = httpx.post(
                url, data=ticket["fields"], files=files, headers=headers, timeout=600
            )
    if response.status_code >= 300:
        raise RuntimeError(f"upload: {response.status_code} {response.text[:300]}")
    job = _check(session.http.post("/api/splits/", json={"upload": ticket["id"]}), "create")
    return str(job["id"]), str(ticket["destination"])


def measure(server: BusyServer, flow: Any) -> tuple[Measured, Any]:
    # post_request runs after the response went out: let the previous flow's last
    # line land before marking the start, and this flow's before reading.
    time.sleep(0.3)
    start = server.offset()
    started = time.perf_counter()
    answer = flow()
    wall = time.perf_counter() - started
    time.sleep(0.3)
    lines = server.since(start)
    measured = Measured(
        wall=wall,
        busy=sum(line["busy"] for line in lines),
        cpu=sum(line["cpu"] for line in lines),
        requests=len(lines),
        received=sum(line["length"] for line in lines),
    )
    return measured, answer


def best(runs: list[Measured]) -> Measured:
    return min(runs, key=lambda run: run.busy)


def describe(name: str, run: Measured) -> str:
    return (
        f"{name}: {run.wall:.2f} s wall, workers busy {run.busy:.3f} s "
        f"(CPU {run.cpu:.3f} s) over {run.requests} request(s) carrying "
        f"{run.received / 1e6:.1f} MB"
    )


@figure(
    "upload_direct_vs_multipart",
    "% busy",
    "<= 2 %",
    order=53,
)
def upload_direct_vs_multipart(ctx: Context) -> Result:
    from fig_api import Session

    ctx.django()
    from django.contrib.auth import get_user_model

    endpoint = ctx.moto()
    size = QUICK_BYTES if ctx.quick else FULL_BYTES
    repeats = 1 if ctx.quick else 2
    seconds = size / django_jobs.BYTES_PER_SECOND
    song = django_jobs.write_wav(ctx.path("uploads", "song.wav"), seconds)
    warm_up = django_jobs.write_wav(ctx.path("uploads", "warm-up.wav"), 1.0)
    user = get_user_model().objects.create_user(f"bench-uploads-{uuid.uuid4().hex[:6]}")

    s3 = busy_server(ctx, "s3", s3_storages(endpoint, f"uploads-{uuid.uuid4().hex[:8]}"))
    files = busy_server(ctx, "files", None)
    runs: dict[str, list[Measured]] = {
        "multipart-s3": [],
        "direct-s3": [],
        "multipart-files": [],
        "direct-app": [],
    }
    destinations: set[str] = set()
    try:
        for server, kind in ((s3, "s3"), (files, "files")):
            session = Session(server.server.url, user)
            # A long-lived worker has imported and connected everything once: so has this one.
            multipart(session, warm_up)
            direct(session, warm_up)
            for _ in range(repeats):
                measured, _job = measure(server, lambda s=session: multipart(s, song))
                runs[f"multipart-{kind}"].append(measured)
                measured, (_job, destination) = measure(server, lambda s=session: direct(s, song))
                destinations.add(destination)
                runs["direct-s3" if kind == "s3" else "direct-app"].append(measured)
    finally:
        for server in (s3, files):
            ctx.purge_queue(server.queue)
    if destinations != {"s3", "app"}:
        raise RuntimeError(f"the direct flows went to {sorted(destinations)}, not s3 and app")

    chosen = {name: best(measured) for name, measured in runs.items()}
    base = chosen["multipart-s3"]
    value = 100.0 * chosen["direct-s3"].busy / base.busy
    cpu_share = 100.0 * chosen["direct-s3"].cpu / base.cpu
    notes = "; ".join(describe(name, run) for name, run in chosen.items())
    notes += (
        f"; direct (S3) CPU time {cpu_share:.1f} % of multipart's (the rest of its busy "
        "time is waiting for the HEAD and range reads that validate the upload)"
    )
    return Result(
        value,
        f"multipart to S3: workers busy {base.busy:.2f} s, {base.wall:.2f} s wall",
        f"a {song.stat().st_size / 1e6:.0f} MB WAV through the API, gunicorn with one sync "
        "worker (warmed up), "
        f"best of {repeats} by busy time: {notes}",
        met=value <= 2.0,
    )
