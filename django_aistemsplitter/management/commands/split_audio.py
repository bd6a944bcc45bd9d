"""``manage.py split_audio FILE``: split one file into stems from the command line.

Creates a job through :func:`django_aistemsplitter.services.split`, shows a
progress bar on stderr while the job runs (polling its row; with Celery in eager
mode the job is already finished when ``split`` returns), then lists every stem
(storage name, URL, size, duration) and copies them to ``--out`` when given.
``--demo`` generates a 10 second song (:func:`~django_aistemsplitter.engines.synth.write_demo_song`)
and splits that.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.template.defaultfilters import filesizeformat

from django_aistemsplitter import contract
from django_aistemsplitter.engines.audio import probe
from django_aistemsplitter.exceptions import (
    AiStemSplitterError,
    AudioDecodeError,
    UnsupportedModelError,
)
from django_aistemsplitter.models import SplitJob, SplitStatus

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
            choices=contract.OUTPUT_FORMATS,
            help="Stem file format (default: the OUTPUT_FORMAT setting).",
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

    # --- helpers ----------------------------------------------------------------

    def _check_model(self, model: str | None, backend: str | None) -> None:
        if not model:
            return
        from django_aistemsplitter import services

        try:
            models = services.available_models(backend)
        except AiStemSplitterError as exc:
            raise CommandError(str(exc)) from exc
        if model not in models and contract.normalize_model(model) not in models:
            raise CommandError(
                f"Unknown model {model!r} for this backend; available: {', '.join(models)}."
            )

    def _progress(self, job: SplitJob) -> None:
        fraction = 1.0 if job.status == SplitStatus.SUCCEEDED else max(0.0, min(1.0, job.progress))
        filled = round(fraction * BAR_WIDTH)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        self.stderr.write(
            f"\r[{bar}] {fraction * 100:5.1f}% {job.get_status_display():<20}", ending=""
        )
        self.stderr.flush()

    def _wait(self, job: SplitJob, timeout: float) -> SplitJob:
        deadline = time.monotonic() + timeout
        interval = 0.5
        self._progress(job)
        while not job.is_terminal:
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
        stems = list(job.stems.all())
        if not stems:
            raise CommandError(f"Job {job.pk} succeeded but has no stems.")
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        for stem in stems:
            try:
                url = stem.file.url
            except (NotImplementedError, ValueError):
                url = ""
            duration = f"{stem.duration_seconds:.2f} s" if stem.duration_seconds else "?"
            line = f"{stem.name:<8} {stem.file.name}  {filesizeformat(stem.size or 0)}  {duration}"
            if url:
                line += f"  {url}"
            if out is not None:
                ext = Path(stem.file.name or "").suffix or f".{stem.format or 'wav'}"
                dest = out / f"{stem.name}{ext}"
                with stem.file.open("rb") as src, dest.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                line += f"  -> {dest}"
            self.stdout.write(line)

    # --- entry point --------------------------------------------------------------

    def handle(self, *args: Any, **options: Any) -> None:
        from django_aistemsplitter import services
        from django_aistemsplitter.conf import get_setting

        demo: bool = options["demo"]
        filename: str | None = options["file"]
        if demo and filename:
            raise CommandError("Give either FILE or --demo, not both.")
        if not demo and not filename:
            raise CommandError("Give the audio FILE to split (or --demo).")
        model: str | None = options["model"]
        backend: str | None = options["backend"]
        out = Path(options["out"]).resolve() if options["out"] else None
        self._check_model(model, backend)

        with tempfile.TemporaryDirectory(prefix="aistemsplitter-") as tmp:
            if demo:
                from django_aistemsplitter.engines.synth import write_demo_song

                path = write_demo_song(Path(tmp) / "demo_song.wav", seconds=DEMO_SECONDS)
                self.stderr.write(f"Generated a {DEMO_SECONDS:g} s demo song: {path.name}")
            else:
                path = Path(filename or "")
                if not path.is_file():
                    raise CommandError(f"No such file: {path}")
            try:
                info = probe(str(path))
            except AudioDecodeError as exc:
                raise CommandError(f"{path} is not audio that can be decoded: {exc}") from exc
            self.stderr.write(
                f"Splitting {path.name} ({info.duration:.1f} s, {info.sample_rate} Hz, "
                f"{info.channels} ch)"
            )
            try:
                with path.open("rb") as handle:
                    job = services.split(
                        File(handle, name=path.name),
                        stem_model=model,
                        output_format=options["output_format"],
                        backend=backend,
                        metadata={"created_by": "split_audio"},
                    )
            except UnsupportedModelError as exc:
                raise CommandError(f"Unknown model: {exc}") from exc
            except (AiStemSplitterError, ValueError, OSError) as exc:
                raise CommandError(str(exc)) from exc

        job.refresh_from_db()
        self.stderr.write(f"Job {job.pk} ({job.backend}, model {job.stem_model})")
        if options["no_wait"]:
            self.stdout.write(str(job.pk))
            return
        timeout = options["timeout"] or float(get_setting("POLL_TIMEOUT"))
        job = self._wait(job, timeout)
        if job.status != SplitStatus.SUCCEEDED:
            raise CommandError(
                f"Job {job.pk} {job.status}: {job.error_code or '-'} {job.error_message}".strip()
            )
        self._describe_stems(job, out)
        if out is not None:
            self.stderr.write(f"Stems copied to {out}")
