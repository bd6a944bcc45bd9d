"""Figures of the whole pipeline through real Celery workers, Redis, PostgreSQL and the sandbox.

* ``pipeline_overhead_ms`` / ``webhook_extra_calls``: hosted jobs with webhooks
  (sandbox -> gunicorn -> Redis -> worker), one at a time; the sandbox's own time
  for each split (its ``updatedAt - createdAt``) is subtracted, the API calls
  it counted after the submit are the extra calls.
* ``jobs_per_min_1w`` / ``scaling_2w``: the same small hosted jobs, all sent at
  once, through one worker process (``--pool=solo``), then two.
* ``ingest_delay_under_separation_ms``: the same hosted jobs while a long local
  separation runs on the heavy queue (``HEAVY_TASK_QUEUE``).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import django_jobs
from harness import Context, Result, Server, Skip, Worker, figure, median

#: Sandbox routes that are API calls about a split after it was created.
SPLIT_GET = "GET /audio/splits/{id}"
ABOUT_SPLITS = re.compile(r"^(GET|POST|DELETE|PATCH) /audio/splits/\{id\}")


@dataclass
class Pipeline:
    sandbox: Any
    server: Server
    worker: Worker
    queue: str
    settings: dict[str, Any]
    song: Any
    #: Commit -> succeeded of each idle job, in seconds (measured by pipeline_overhead_ms).
    idle_totals: list[float] = field(default_factory=list)


_state: dict[str, Any] = {}


def pipeline(ctx: Context) -> Pipeline:
    """The hosted pipeline with webhooks, started once per run."""
    if "pipeline" not in _state:
        ctx.django()
        sandbox = ctx.sandbox("pipeline", engine="passthrough")
        queue = "bench-light-" + uuid.uuid4().hex[:8]
        base = django_jobs.hosted_settings(sandbox, TASK_QUEUE=queue)
        server = ctx.server(base, workers=2, name="gunicorn-pipeline")
        settings = {**base, "WEBHOOK_BASE_URL": server.url}
        worker = ctx.worker(settings, [queue], pool="threads", concurrency=2, name="light")
        song = django_jobs.write_wav(ctx.path("pipeline", "song.wav"), 2.0)
        _state["pipeline"] = Pipeline(sandbox, server, worker, queue, settings, song)
    return _state["pipeline"]


@dataclass
class Run:
    total: float  # commit -> succeeded, seconds
    sandbox: float  # the sandbox's own time for the split, seconds
    calls: int  # API calls about the split after its creation
    gets: int
    #: Where the time went, seconds: submit (commit -> submitted_at), service, webhook
    #: (split done -> delivery processed), ingest (delivery processed -> succeeded).
    phases: dict[str, float] = field(default_factory=dict)


def run_hosted_job(p: Pipeline, settings: dict[str, Any] | None = None) -> Run:
    """One hosted job from commit to ``succeeded``."""
    from django.test import override_settings

    from django_aistemsplitter import services
    from django_aistemsplitter.client import AiStemSplitter
    from django_aistemsplitter.models import SplitJob

    before = django_jobs.sandbox_stats(p.sandbox)["requests"]
    with override_settings(AISTEMSPLITTER=settings or p.settings):
        job = services.split(p.song)
        committed = time.time()
        django_jobs.wait_terminal([job.pk], timeout=120, interval=0.005)
    job = SplitJob.objects.get(pk=job.pk)
    if job.status != "succeeded" or job.finished_at is None:
        raise RuntimeError(f"job {job.pk} ended {job.status}: {job.error_message}")
    after = django_jobs.sandbox_stats(p.sandbox)["requests"]
    with AiStemSplitter(p.sandbox.api_key, base_url=p.sandbox.base_url) as client:
        split = client.get_split(job.remote_id)
    assert split.updated_at is not None and split.created_at is not None
    sandbox_seconds = (split.updated_at - split.created_at).total_seconds()
    calls = sum(after.get(k, 0) - before.get(k, 0) for k in after if ABOUT_SPLITS.match(k))
    gets = after.get(SPLIT_GET, 0) - before.get(SPLIT_GET, 0)
    phases = {}
    event = job.webhook_events.order_by("received_at").first()
    if job.submitted_at is not None and event is not None and event.processed_at is not None:
        phases = {
            "submit": job.submitted_at.timestamp() - committed,
            "service": sandbox_seconds,
            "webhook": (event.processed_at - split.updated_at).total_seconds(),
            "ingest": (job.finished_at - event.processed_at).total_seconds(),
        }
    return Run(job.finished_at.timestamp() - committed, sandbox_seconds, calls, gets, phases)


@figure("pipeline_overhead_ms", "ms", "< 300", order=60)
def pipeline_overhead_ms(ctx: Context) -> Result:
    p = pipeline(ctx)
    run_hosted_job(p)  # warm up: connections, imports in the worker
    count = 4 if ctx.quick else 20
    runs = [run_hosted_job(p) for _ in range(count)]
    _state["runs"] = runs
    p.idle_totals = [r.total for r in runs]
    overhead = median([(r.total - r.sandbox) * 1000 for r in runs])
    phases = ", ".join(
        f"{name} {median([r.phases[name] * 1000 for r in runs if r.phases]):.0f}"
        for name in ("submit", "service", "webhook", "ingest")
        if any(r.phases for r in runs)
    )
    return Result(
        overhead,
        f"sandbox's own time per split {median([r.sandbox * 1000 for r in runs]):.0f} ms",
        f"hosted backend, webhooks, 2 s WAV, passthrough engine; commit of the SplitJob -> "
        f"succeeded {median([r.total * 1000 for r in runs]):.0f} ms (median of {count}, one at "
        f"a time) minus the sandbox's updatedAt - createdAt of the split; includes upload, "
        f"webhook delivery through gunicorn, the ingest task and 4 stem downloads; median ms "
        f"per phase: {phases} (submit: commit -> submitted_at, from the split's creation "
        f"before the service's work starts; webhook: split done -> delivery processed; "
        f"ingest: delivery processed -> succeeded)",
        met=overhead < 300,
    )


@figure("webhook_extra_calls", "calls", "<= 1", order=61)
def webhook_extra_calls(ctx: Context) -> Result:
    p = pipeline(ctx)
    runs = _state.get("runs") or [run_hosted_job(p) for _ in range(3)]
    worst = max(r.calls for r in runs)
    # The same job polled instead: a worker whose settings have no WEBHOOK_BASE_URL.
    queue = "bench-poll-" + uuid.uuid4().hex[:8]
    settings = {k: v for k, v in p.settings.items() if k != "WEBHOOK_BASE_URL"}
    settings["TASK_QUEUE"] = queue
    poller = ctx.worker(settings, [queue], pool="threads", concurrency=2, name="poller")
    polled = run_hosted_job(p, settings)
    poller.process.stop()
    return Result(
        worst,
        f"polling the same job: {polled.calls} calls",
        f"API calls about the split after it was created, worst of {len(runs)} webhook jobs "
        f"(the ingest's fresh GET of the stem URLs); polling (POLL_INTERVAL 2 s, growing by "
        f"half each time) makes more the longer the job runs: see poll_calls_120s",
        met=worst <= 1,
    )


# --- throughput ----------------------------------------------------------------------


def throughput_setup(ctx: Context) -> tuple[Pipeline, str, dict[str, Any]]:
    """A queue of its own, and a gunicorn sending the webhooks' ingests to it."""
    if "throughput" not in _state:
        p = pipeline(ctx)
        queue = "bench-throughput-" + uuid.uuid4().hex[:8]
        base = django_jobs.hosted_settings(p.sandbox, TASK_QUEUE=queue)
        server = ctx.server(base, workers=2, name="gunicorn-throughput")
        _state["throughput"] = (queue, {**base, "WEBHOOK_BASE_URL": server.url})
    queue, settings = _state["throughput"]
    return pipeline(ctx), queue, settings


def make_jobs(ctx: Context, p: Pipeline, count: int, settings: dict[str, Any]) -> list[str]:
    """``count`` hosted jobs created through ``services.split``, their submits parked on a
    queue nobody reads (emptied here), so the measured run sends them all at once."""
    from django.test import override_settings

    from django_aistemsplitter import services

    hold = "bench-hold-" + uuid.uuid4().hex[:8]
    with override_settings(AISTEMSPLITTER={**settings, "TASK_QUEUE": hold}):
        ids = [str(services.split(p.song).pk) for _ in range(count)]
    ctx.purge_queue(hold)
    return ids


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot (``/proc/stat``)."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


#: Who uses the machine's CPUs during a throughput run, by command line.
_CPU_GROUPS = (
    ("workers", "celery"),
    ("sandbox", "sandbox"),
    ("gunicorn", "gunicorn"),
    ("PostgreSQL", "postgres"),
    ("Redis", "redis-server"),
)


def _cpu_by_group(own_pid: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each group of processes.

    Read from ``/proc/<pid>/stat`` of every process, with the time of its children
    that exited. The bench's own process is its own group; anything else (the
    machine's other work) is "other". The kernel's own work (loopback networking
    in soft interrupts) is in no process: the groups add up to less than the
    machine's busy time.
    """
    tick = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                command = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # utime + stime, and cutime + cstime: children that exited (and were waited for).
        seconds = sum(int(value) for value in fields[11:15]) / tick
        if int(entry) == own_pid:
            group = "bench"
        else:
            group = next((name for name, key in _CPU_GROUPS if key in command), "other")
        totals[group] = totals.get(group, 0.0) + seconds
    return totals


def throughput(ctx: Context, workers: int, count: int) -> tuple[float, str]:
    """Jobs per minute of ``workers`` solo worker processes on one queue; (rate, check).

    The clock stops when the last job has succeeded and the queue is empty with
    nothing in a worker's hands: the waveform tasks the jobs queued count, and a
    run never leaves work behind for the next one.

    The check also says how busy the whole machine's CPUs were during the run:
    the sandbox, gunicorn, PostgreSQL and Redis share them with the workers, so
    near 100 % a second worker has no CPU to gain from.
    """
    p, queue, settings = throughput_setup(ctx)
    from django.test import override_settings

    from django_aistemsplitter.dispatch import Step, send
    from django_aistemsplitter.models import SplitJob, Stem

    def submit(job_ids: list[str]) -> None:
        with override_settings(AISTEMSPLITTER=settings):
            for job_id in job_ids:
                send(Step.SUBMIT, job_id)

    started_workers = [
        ctx.worker(settings, [queue], pool="solo", name=f"solo{n}-of-{workers}")
        for n in range(workers)
    ]
    # Two jobs per worker first, unmeasured: a worker process's first tasks (and a
    # web worker's first deliveries) import what they use and open their
    # connections, about a second of CPU each, which a worker that has been
    # running for a while has long paid.
    warmup = make_jobs(ctx, p, 2 * workers, settings)
    submit(warmup)
    django_jobs.wait_terminal(warmup, timeout=300, interval=0.05)
    ctx.wait_drained(queue)
    ids = make_jobs(ctx, p, count, settings)
    splits_before = django_jobs.sandbox_stats(p.sandbox)["splits"]
    started = time.time()
    busy_before, total_before = _cpu_ticks()
    groups_before = _cpu_by_group(os.getpid())
    submit(ids)
    # Polled slowly: the bench's own queries share the machine with what it measures.
    # The clock stops at the drain, seconds after the last job (its waveforms).
    django_jobs.wait_terminal(ids, timeout=900, interval=0.25)
    # The jobs' own work ends with the tasks they queued: each stem's waveform is
    # drawn by a task of its own, after the job succeeded.
    drained = ctx.wait_drained(queue)
    busy_after, total_after = _cpu_ticks()
    groups_after = _cpu_by_group(os.getpid())
    machine_busy = (busy_after - busy_before) / max(1, total_after - total_before)
    jobs = SplitJob.objects.filter(pk__in=ids)
    last = max(j.finished_at.timestamp() for j in jobs if j.finished_at)
    seconds = max(last, drained) - started
    for worker in started_workers:
        worker.process.stop()
    bad = django_jobs.failures(ids)
    stems = Stem.objects.filter(job__in=ids).count()
    repeated = jobs.filter(attempts__gt=1).count()
    splits = django_jobs.sandbox_stats(p.sandbox)["splits"] - splits_before
    media = ctx.path("media", "aistemsplitter", "stems")
    files = sum(1 for job_id in ids for _ in (media / job_id).glob("*.wav"))
    problems = []
    if bad:
        problems.append(f"{len(bad)} not succeeded ({bad[0]})")
    if stems != 4 * count or files != 4 * count:
        problems.append(f"{stems} stem rows and {files} files for {count} jobs")
    if repeated or splits != count:
        problems.append(f"{repeated} jobs submitted twice, {splits} remote splits")
    check = "; ".join(problems) or (
        f"all {count} succeeded, 4 stems each, {splits} remote splits: none lost or duplicated"
    )
    check += (
        f"; last job succeeded after {last - started:.1f} s, its waveforms drawn after "
        f"{max(last, drained) - started:.1f} s; the machine's CPUs were {machine_busy:.0%} busy"
    )
    used = {
        name: groups_after.get(name, 0.0) - groups_before.get(name, 0.0) for name in groups_after
    }
    per_job = ", ".join(
        f"{name} {seconds / count * 1000:.0f}"
        for name, seconds in sorted(used.items(), key=lambda item: -item[1])
        if seconds > 0
    )
    check += f"; CPU ms per job: {per_job}"
    _state["machine_busy"] = machine_busy
    return count / seconds * 60, check


@figure("jobs_per_min_1w", "jobs/min", "(reported; scaling_2w has the goal)", order=70)
def jobs_per_min_1w(ctx: Context) -> Result:
    count = 20 if ctx.quick else 200
    rate, check = throughput(ctx, 1, count)
    _state["rate_1w"] = (rate, count)
    return Result(
        rate,
        "-",
        f"{count} hosted jobs (2 s WAV, webhooks, sandbox with the passthrough engine) through "
        f"one `celery worker --pool=solo`, all submits sent at once -> last job succeeded and "
        f"the queue drained (every stem's waveform drawn: the work a job queues counts); "
        f"{check}",
        met=None if "none lost" in check else False,
    )


@figure("scaling_2w", "x", ">= 1.6", order=71)
def scaling_2w(ctx: Context) -> Result:
    if "rate_1w" not in _state:
        jobs_per_min_1w(ctx)
    rate_1w, count = _state["rate_1w"]
    rate_2w, check = throughput(ctx, 2, count)
    ratio = rate_2w / rate_1w
    # What two workers could make with every CPU of the machine busy: the most this
    # machine lets the ratio be, whatever the workers do.
    ceiling = rate_2w / max(_state["machine_busy"], 0.01) / rate_1w
    return Result(
        ratio,
        f"one worker process {rate_1w:.0f} jobs/min",
        f"two worker processes {rate_2w:.0f} jobs/min on {count} more jobs of the same kind; "
        f"{check}; with both CPUs fully busy the two would make at most "
        f"{rate_2w / max(_state['machine_busy'], 0.01):.0f} jobs/min: this machine's ceiling "
        f"for the ratio is {ceiling:.2f}",
        met=ratio >= 1.6 and "none lost" in check,
    )


# --- heavy and light queues ---------------------------------------------------------


@figure("ingest_delay_under_separation_ms", "ms", "< 500", order=80)
def ingest_delay_under_separation_ms(ctx: Context) -> Result:
    p = pipeline(ctx)
    from django.test import override_settings

    from django_aistemsplitter import services
    from django_aistemsplitter.conf import DEFAULTS
    from django_aistemsplitter.models import SplitJob, SplitStatus

    if "HEAVY_TASK_QUEUE" not in DEFAULTS:
        raise Skip("this version has no HEAVY_TASK_QUEUE setting")
    if not p.idle_totals:
        run_hosted_job(p)
        p.idle_totals = [run_hosted_job(p).total for _ in range(3)]
    heavy_queue = "bench-heavy-" + uuid.uuid4().hex[:8]
    seconds = 180.0 if ctx.quick else 600.0
    long_song = ctx.path("heavy", "long.wav")
    if not long_song.exists():
        django_jobs.write_wav(long_song, seconds)  # the engine's cost does not depend on it
    heavy = {
        "BACKEND": "local",
        "ENGINE": "spectral",
        "TASK_QUEUE": p.queue,
        "HEAVY_TASK_QUEUE": heavy_queue,
    }
    heavy_worker = ctx.worker(heavy, [heavy_queue], pool="threads", concurrency=1, name="heavy")
    with override_settings(AISTEMSPLITTER={**p.settings, "HEAVY_TASK_QUEUE": heavy_queue}):
        big = services.split(long_song, backend="local")
    deadline = time.monotonic() + 120
    while SplitJob.objects.get(pk=big.pk).status != SplitStatus.PROCESSING:
        if time.monotonic() > deadline:
            raise RuntimeError("the long separation did not start")
        time.sleep(0.05)
    separation_started = time.monotonic()
    during = []
    while len(during) < (3 if ctx.quick else 10):
        run = run_hosted_job(p)
        if SplitJob.objects.get(pk=big.pk).status != SplitStatus.PROCESSING:
            break
        during.append(run.total)
    django_jobs.wait_terminal([big.pk], timeout=1800, interval=0.2)
    separation = time.monotonic() - separation_started
    big.refresh_from_db()
    heavy_worker.process.stop()
    if len(during) < 2:
        raise RuntimeError(f"the separation ended before the light jobs ran ({len(during)})")
    idle = median(p.idle_totals)
    delay = (median(during) - idle) * 1000
    return Result(
        delay,
        f"same job with no separation running {idle * 1000:.0f} ms",
        f"median commit -> succeeded of {len(during)} hosted jobs (webhooks) while a "
        f"{seconds / 60:g}-minute local separation (spectral engine, {big.status} after "
        f"{separation:.0f} s) ran on the heavy queue, minus the idle median",
        met=delay < 500,
    )
