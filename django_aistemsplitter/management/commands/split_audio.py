"""``manage.py split_audio FILE``: split one file into stems from the command line.

Validates the request through the one validation path
(:func:`django_aistemsplitter.validation.validate_split_request`, so the file is
decoded once and a refusal is one ``CommandError`` line), creates the job with
:func:`django_aistemsplitter.services.create_split`, shows a
progress bar on stderr while the job runs (polling its row; with Celery in eager
mode the job is already finished when ``split`` returns), then prints a table of
the stems (stem, duration, size, where the file is) and copies them to ``--out``
when given.
``--demo`` generates a 10 second song (:func:`~django_aistemsplitter.sandbox.synth.write_demo_song`)
and splits that, and prints where the song is stored.

It fails fast, in one line, where a new project trips: a broker that does not
answer (the job is deleted again, nothing is left pending) and no worker taking
the job within ``--worker-timeout`` (the ``WORKER_TIMEOUT`` setting), with the
command that starts one.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.template.defaultfilters import filesizeformat

from django_aistemsplitter import contract, services
from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.exceptions import AiStemSplitterError
from django_aistemsplitter.models import SplitJob, SplitStatus
from django_aistemsplitter.sandbox.synth import write_demo_song
from django_aistemsplitter.validation import ValidSplitRequest, validate_split_request

BAR_WIDTH = 30
DEMO_SECONDS = 10.0


class Command(BaseCommand):
    help = "Split an audio file into stems (vocals, drums, bass, ...) and list or copy them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "file", nargs="?", help="The audio file to split (WAV, FLAC, OGG, MP3)."
        )
        parser.add_argument("--model", help="Model name (default: the backend's default).")
        parser.add_argument("--backend", help='Backend: "local", "hosted" or a dotted path.')
        parser.add_argument(
            "--format",
            dest="output_format",
            metavar="FORMAT",
            help=f"Stem file format: {', '.join(contract.OUTPUT_FORMATS)} "
            "(default: the OUTPUT_FORMAT setting).",
        )
        parser.add_argument("--out", help="Copy the stems into this directory.")
        parser.add_argument(
            "--demo",
            action="store_true",
            help=f"Split a generated {DEMO_SECONDS:g} s song instead of FILE.",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=None,
            help="Give up waiting after this many seconds (default: the POLL_TIMEOUT setting).",
        )
        parser.add_argument(
            "--no-wait",
            action="store_true",
            help="Create the job and exit without waiting for it.",
        )
        parser.add_argument(
            "--worker-timeout",
            type=float,
            default=None,
            metavar="SECONDS",
            help="Stop when no Celery worker has picked the job up after this long "
            "(default: the WORKER_TIMEOUT setting, 30 s; 0 = wait up to --timeout).",
        )

    # --- helpers ----------------------------------------------------------------

    def _progress(self, job: SplitJob) -> None:
        fraction = 1.0 if job.status == SplitStatus.SUCCEEDED else max(0.0, min(1.0, job.progress))
        filled = round(fraction * BAR_WIDTH)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        self.stderr.write(
            f"\r[{bar}] {fraction * 100:5.1f}% {job.get_status_display():<20}", ending=""
        )
        self.stderr.flush()

    def _wait(self, job: SplitJob, timeout: float, worker_timeout: float) -> SplitJob:
        started = time.monotonic()
        deadline = started + timeout
        interval = 0.5
        self._progress(job)
        while not job.is_terminal:
            unclaimed = worker_timeout and job.status == SplitStatus.PENDING
            if unclaimed and time.monotonic() - started > worker_timeout:
                # Still pending: is anyone consuming the queue (busy), or no one at all?
                if not consumers_of(task_queue()):
                    self.stderr.write("")
                    raise CommandError(no_worker_message(job, worker_timeout))
                worker_timeout = 0.0  # a worker is there, just busy: wait for it
            if time.monotonic() > deadline:
                self.stderr.write("")
                raise CommandError(
                    f"Job {job.pk} is still {job.status} after {timeout:g} s; follow it in the "
                    "admin or the API (is a Celery worker running?)."
                )
            time.sleep(interval)
            job.refresh_from_db()
            self._progress(job)
        self.stderr.write("")
        return job

    def _describe_stems(self, job: SplitJob, out: Path | None) -> None:
        """A short table: stem, duration, size and where the file is (a path or a URL)."""
        stems = list(job.stems.all())
        if not stems:
            raise CommandError(f"Job {job.pk} succeeded but has no stems.")
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        rows = [("stem", "duration", "size", "where")]
        for stem in stems:
            where = location(stem.file)
            if out is not None:
                ext = Path(stem.file.name or "").suffix or f".{stem.format or 'wav'}"
                dest = out / f"{stem.name}{ext}"
                with stem.file.open("rb") as src, dest.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                where = shown_path(dest)
            duration = f"{stem.duration_seconds:.2f} s" if stem.duration_seconds else "?"
            rows.append((stem.name, duration, filesizeformat(stem.size or 0), where))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for name, duration, size, where in rows:
            self.stdout.write(
                f"{name:<{widths[0]}}  {duration:>{widths[1]}}  {size:>{widths[2]}}  {where}"
            )

    # --- entry point --------------------------------------------------------------

    def handle(self, *args: Any, **options: Any) -> None:
        demo: bool = options["demo"]
        filename: str | None = options["file"]
        if demo and filename:
            raise CommandError("Give either FILE or --demo, not both.")
        if not demo and not filename:
            raise CommandError("Give the audio FILE to split (or --demo).")
        model: str | None = options["model"]
        backend: str | None = options["backend"]
        out = Path(options["out"]).resolve() if options["out"] else None

        with tempfile.TemporaryDirectory(prefix="aistemsplitter-") as tmp:
            if demo:
                path = write_demo_song(Path(tmp) / "demo_song.wav", seconds=DEMO_SECONDS)
                self.stderr.write(f"Generated a {DEMO_SECONDS:g} s demo song: {path.name}")
            else:
                path = Path(filename or "")
                if not path.is_file():
                    raise CommandError(f"No such file: {path}")
            try:
                with path.open("rb") as handle:
                    request = validate_split_request(
                        File(handle, name=path.name),
                        stem_model=model,
                        output_format=options["output_format"],
                        backend=backend,
                    )
                    if request.audio is not None:
                        info = request.audio
                        self.stderr.write(
                            f"Splitting {path.name} ({info.duration:.1f} s, "
                            f"{info.sample_rate} Hz, {info.channels} ch)"
                        )
                    job = create_or_explain(request)
            except (AiStemSplitterError, ValueError, OSError) as exc:
                # InvalidSplitRequest (a refused request), a misconfigured backend, storage.
                raise CommandError(" ".join(str(exc).split())) from exc

        job.refresh_from_db()
        self.stderr.write(f"Job {job.pk} ({job.backend}, model {job.stem_model})")
        if options["no_wait"]:
            self.stdout.write(str(job.pk))
            return
        timeout = options["timeout"] or float(get_setting("POLL_TIMEOUT"))
        worker_timeout = options["worker_timeout"]
        if worker_timeout is None:
            worker_timeout = float(get_setting("WORKER_TIMEOUT"))
        job = self._wait(job, timeout, worker_timeout)
        if job.status != SplitStatus.SUCCEEDED:
            raise CommandError(
                f"Job {job.pk} {job.status}: {job.error_code or '-'} {job.error_message}".strip()
            )
        self._describe_stems(job, out)
        if demo:
            self.stdout.write(f"Demo song: {location(job.audio)}")
        if out is not None:
            self.stderr.write(f"Stems copied to {shown_path(out)}")


# --- outside the command class: where things are, and what to tell the user ------


def shown_path(path: Path) -> str:
    """``path`` relative to the current directory when inside it (shorter), else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path.resolve())


def location(file: FieldFile) -> str:
    """Where a stored file is: its path on this machine, else its URL, else its name."""
    try:
        return shown_path(Path(file.path))
    except (NotImplementedError, ValueError):
        pass
    try:
        return str(file.url)
    except (NotImplementedError, ValueError):
        return str(file.name)


def task_queue() -> str:
    """The queue the tasks go to: ``TASK_QUEUE``, else Celery's default queue."""
    from celery import current_app

    return str(get_setting("TASK_QUEUE") or current_app.conf.task_default_queue)


def consumers_of(queue: str) -> list[str]:
    """Names of the running workers that consume ``queue`` (asked over the broker, 1 s)."""
    from celery import current_app

    try:
        replies = current_app.control.inspect(timeout=1.0).active_queues() or {}
    except Exception:  # the broker went away meanwhile: then nobody is consuming
        return []
    return sorted(
        name
        for name, queues in replies.items()
        if any(isinstance(q, dict) and q.get("name") == queue for q in queues or ())
    )


def worker_command() -> str:
    """The command that starts a worker for this project's Celery app and queue."""
    from celery import current_app

    app = current_app.main or "yourproject"
    queue = get_setting("TASK_QUEUE")
    return f"celery -A {app} worker -l info" + (f" -Q {queue}" if queue else "")


def no_worker_message(job: SplitJob, waited: float) -> str:
    return (
        f"No Celery worker picked up job {job.pk} within {waited:g} s (it stays queued): "
        f"start one with `{worker_command()}`, or set CELERY_TASK_ALWAYS_EAGER = True "
        "to split inside this command."
    )


def create_or_explain(request: ValidSplitRequest) -> SplitJob:
    """Create the job; if its task cannot be sent, remove it and say why in one line.

    The submit task is sent when the job's row commits; with the broker down
    that send fails after the row exists. The outer transaction keeps the job
    in hand so it (and its stored audio) can be deleted again: a failed
    command leaves no orphan pending job behind.
    """
    from celery import current_app
    from kombu.exceptions import OperationalError
    from kombu.utils.url import maybe_sanitize_url

    job: SplitJob | None = None
    try:
        with transaction.atomic():
            job = services.create_split(request, metadata={"created_by": "split_audio"})
    except OperationalError as exc:
        if job is not None and job.pk is not None:
            job.audio.delete(save=False)
            job.delete()
        broker = maybe_sanitize_url(str(current_app.conf.broker_url or "(none)"))
        raise CommandError(
            f"Cannot reach the Celery broker at {broker} ({' '.join(str(exc).split())}); "
            "start it (e.g. redis-server), or set CELERY_TASK_ALWAYS_EAGER = True to split "
            "without a broker and worker. No job was kept."
        ) from None
    return job
