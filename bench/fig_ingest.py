"""Figures of the stem ingest: throughput against ``curl -o``, into files and S3, and memory.

A split of the sandbox (passthrough engine: every stem as long as the input) is
ingested by ``steps.ingest`` -- the fetch, the four downloads, their checks and
the all-or-nothing commit into storage, exactly what the ``ingest_split`` task
runs -- in a fresh Python process that reports its wall time and how far its
resident set grew (peak ``VmHWM`` minus the RSS before the timed ingest). That
process first ingests a split of a 1 s song, untimed, as a worker has run an
ingest before: what a process builds once (the API client, the TLS context, the
Celery producer; about 0.3 s) is not a cost of each ingest. The
baseline is one ``curl`` process downloading the same four URLs to disk, in the
same run, alternating with the ingests; the best of each is kept.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import django_jobs
from harness import Context, Result, Skip, figure, s3_client, s3_storages

INGEST_CHILD = """
import json, sys, time
import django
django.setup()
from django_aistemsplitter import steps
from django_aistemsplitter.models import SplitJob

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])

job = SplitJob.objects.get(pk=sys.argv[1])
# A worker has its broker connection open before its first task, and has run an
# ingest before (its API client, TLS context and Celery producer are built once per
# process): pay that here, outside the timing, with a small split.
from celery import current_app
with current_app.producer_or_acquire() as producer:
    producer.connection.ensure_connection()
warmup = 0.0
if sys.argv[2]:
    started = time.perf_counter()
    assert steps.ingest(SplitJob.objects.get(pk=sys.argv[2])) is not None
    warmup = time.perf_counter() - started
profile = sys.argv[3] if len(sys.argv) > 3 else ""
if profile:
    import cProfile
    profiler = cProfile.Profile()
    profiler.enable()
before = status("VmRSS:")
started = time.perf_counter()
outcome = steps.ingest(job)
seconds = time.perf_counter() - started
if profile:
    profiler.disable()
    profiler.dump_stats(profile)
job.refresh_from_db()
print(json.dumps({
    "outcome": outcome, "status": job.status, "error": job.error_message,
    "seconds": seconds, "warmup_seconds": warmup,
    "rss_before_kib": before, "peak_kib": status("VmHWM:"),
    "bytes": sum(s.size or 0 for s in job.stems.all()), "stems": job.stems.count(),
}))
"""


@dataclass
class Prepared:
    """Sandbox splits whose stems total ``total_bytes`` each, ready to ingest."""

    sandbox: Any
    split_ids: list[str]
    total_bytes: int
    warmup_split: str
    """A split of a 1 s song: each ingest process first ingests a job of it, untimed."""


def prepare(ctx: Context, total_mb: float, count: int) -> Prepared:
    """Upload one song whose four passthrough stems total ``total_mb`` MB; ``count`` splits."""
    from django_aistemsplitter.client import AiStemSplitter

    ctx.django()
    sandbox = ctx.sandbox("ingest", engine="passthrough", max_upload_bytes=2 * 1000**3)
    seconds = total_mb * 1e6 / 4 / django_jobs.BYTES_PER_SECOND
    song = django_jobs.write_wav(ctx.path("ingest", f"song-{total_mb:g}MB.wav"), seconds)
    short = django_jobs.write_wav(ctx.path("ingest", "warmup.wav"), 1.0)
    with AiStemSplitter(sandbox.api_key, base_url=sandbox.base_url, timeout=600) as client:
        upload = client.upload_file(song)
        splits = [client.submit(input=upload) for _ in range(count)]
        done = [client.wait_for_split(s.id, timeout=900) for s in splits]
        warmup = client.wait_for_split(client.submit(input=client.upload_file(short)).id)
    song.unlink()
    short.unlink()
    bad = [s.id for s in [*done, warmup] if s.status != "succeeded"]
    if bad:
        raise RuntimeError(f"sandbox splits did not succeed: {bad}")
    sizes = [p.stat().st_size for p in (sandbox.data_dir / "splits" / done[0].id).rglob("*.wav")]
    return Prepared(sandbox, [s.id for s in done], sum(sizes), warmup.id)


def new_job(split_id: str) -> str:
    """A job in ``processing`` whose remote split has succeeded: what a webhook leaves."""
    from django_aistemsplitter.models import SplitJob, SplitStatus

    job = SplitJob.objects.create(
        backend="hosted",
        stem_model="htdemucs_ft",
        output_format="wav",
        remote_id=split_id,
        status=SplitStatus.PROCESSING,
        original_filename="bench.wav",
    )
    return str(job.pk)


def ingest_in_child(
    ctx: Context,
    prepared: Prepared,
    job_id: str,
    storages: Any,
    label: str = "ingest",
) -> dict:
    """Ingest ``job_id`` in a fresh process, warmed by one small ingest; with ``--profile``,
    under cProfile."""
    settings = django_jobs.hosted_settings(prepared.sandbox)
    env = ctx.bench_env(settings, storages)
    warmup_job = new_job(prepared.warmup_split)
    args = [sys.executable, "-c", INGEST_CHILD, job_id, warmup_job]
    if ctx.profile_dir is not None:
        args.append(str(ctx.profile_dir / f"{label}.prof"))
    out = subprocess.run(
        args,
        capture_output=True,
        text=True,
        env=env,
        cwd=ctx.scratch,
        timeout=1800,
    )
    if out.returncode:
        raise RuntimeError(f"ingest child failed:\n{out.stderr[-3000:]}")
    report = json.loads(out.stdout.strip().splitlines()[-1])
    if report["status"] != "succeeded" or report["stems"] != 4:
        raise RuntimeError(f"ingest did not store 4 stems: {report}")
    # One job per remote split: the next ingest's warm-up makes its own.
    drop_stems(warmup_job)
    from django_aistemsplitter.models import SplitJob

    SplitJob.objects.filter(pk=warmup_job).delete()
    return report


def curl_seconds(ctx: Context, prepared: Prepared, split_id: str) -> float:
    """One curl process fetching the split's four stem URLs to disk, as ingest does."""
    from django_aistemsplitter.client import AiStemSplitter

    curl = shutil.which("curl")
    if curl is None:
        raise Skip("curl is not installed")
    sandbox = prepared.sandbox
    with AiStemSplitter(sandbox.api_key, base_url=sandbox.base_url) as client:
        urls = client.get_split(split_id).stems
    target = ctx.path("curl", uuid.uuid4().hex, ".keep").parent
    args = [curl, "-sS", "--fail"]
    for name, url in urls.items():
        args += ["-o", str(target / f"{name}.wav"), url]
    started = time.perf_counter()
    subprocess.run(args, check=True)
    seconds = time.perf_counter() - started
    shutil.rmtree(target)
    return seconds


def drop_stems(job_id: str) -> None:
    """Delete a measured job's stored stems (keeps the disk from filling up)."""
    from django_aistemsplitter.models import SplitJob

    for stem in SplitJob.objects.get(pk=job_id).stems.all():
        stem.file.delete(save=False)


def compare(
    ctx: Context, prepared: Prepared, storages: Any, label: str
) -> tuple[float, float, list[dict]]:
    """(best curl s, best ingest s, ingest reports), curl and ingest alternating."""
    curl_times, reports = [], []
    for split_id in prepared.split_ids:
        curl_times.append(curl_seconds(ctx, prepared, split_id))
        job_id = new_job(split_id)
        reports.append(ingest_in_child(ctx, prepared, job_id, storages, f"ingest-{label}"))
        if storages is None:
            drop_stems(job_id)
        ctx.say(f"    {label}: curl {curl_times[-1]:.2f} s, ingest {reports[-1]['seconds']:.2f} s")
    return min(curl_times), min(r["seconds"] for r in reports), reports


def _growth_mb(report: dict) -> float:
    return (report["peak_kib"] - report["rss_before_kib"]) * 1024 / 1e6


def _ratio_result(
    ctx: Context, storages: Any, label: str, goal: float, store: str
) -> tuple[Result, list[dict]]:
    repeats = 1 if ctx.quick else 3
    prepared = prepare(ctx, 100 if ctx.quick else 120, repeats)
    curl, ingest, reports = compare(ctx, prepared, storages, label)
    mb = prepared.total_bytes / 1e6
    ratio = curl / ingest
    result = Result(
        ratio,
        f"curl -o {mb / curl:.0f} MB/s",
        f"4 stems, {mb:.0f} MB in all, sandbox -> {store}: ingest {mb / ingest:.0f} MB/s "
        f"({ingest:.2f} s), curl {curl:.2f} s; best of {repeats} each, alternating; the ingest "
        f"runs steps.ingest in a fresh process (the ingest_split task's work) after one untimed "
        f"ingest of a 1 s song there ({min(r['warmup_seconds'] for r in reports):.2f} s)",
        met=ratio >= goal,
    )
    return result, reports


_growth_100mb: dict[str, float] = {}
_rss_before: dict[str, float] = {}


@figure("ingest_vs_curl", "x (throughput)", ">= 0.9", order=30)
def ingest_vs_curl(ctx: Context) -> Result:
    result, reports = _ratio_result(ctx, None, "files", 0.9, "FileSystemStorage")
    _growth_100mb["files"] = max(_growth_mb(r) for r in reports)
    _rss_before["files"] = reports[0]["rss_before_kib"] * 1024 / 1e6
    return result


@figure("ingest_s3_vs_curl", "x (throughput)", ">= 0.7", order=31)
def ingest_s3_vs_curl(ctx: Context) -> Result:
    endpoint = ctx.moto()
    location = f"run-{uuid.uuid4().hex[:8]}"
    result, _ = _ratio_result(ctx, s3_storages(endpoint, location), "S3", 0.7, "S3 (moto server)")
    client = s3_client(endpoint)
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket="aistemsplitter-bench", Prefix=location
    )
    keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
    for key in keys:
        client.delete_object(Bucket="aistemsplitter-bench", Key=key)
    result.notes += f"; {len(keys)} objects stored"
    return result


@figure("ingest_rss_growth_mb", "MB", "< 32 at 100 MB and 1 GB", order=32)
def ingest_rss_growth(ctx: Context) -> Result:
    sizes: dict[str, float] = {}
    before = 0.0
    seconds = ""
    for total_mb in (100,) if ctx.quick else (100, 1000):
        if total_mb == 100 and "files" in _growth_100mb:
            sizes["100 MB"] = _growth_100mb["files"]
            continue
        prepared = prepare(ctx, total_mb, 1)
        job_id = new_job(prepared.split_ids[0])
        report = ingest_in_child(ctx, prepared, job_id, None, f"ingest-{total_mb}MB")
        drop_stems(job_id)
        shutil.rmtree(
            prepared.sandbox.data_dir / "splits" / prepared.split_ids[0], ignore_errors=True
        )
        label = f"{prepared.total_bytes / 1e6:.0f} MB"
        sizes[label] = _growth_mb(report)
        before = report["rss_before_kib"] * 1024 / 1e6
        seconds = f"; {report['seconds']:.1f} s for {label}"
    worst = max(sizes.values())
    notes = ", ".join(f"{k}: +{v:.1f} MB" for k, v in sizes.items())
    if ctx.quick:
        notes += " (--quick measures 100 MB only; the full run adds 1 GB)"
    before = before or _rss_before.get("files", 0.0)
    return Result(
        worst,
        f"RSS {before:.0f} MB with Django loaded, before the ingest",
        f"peak RSS growth of the ingesting process, worst of its runs: {notes}{seconds}",
        met=worst < 32,
    )
