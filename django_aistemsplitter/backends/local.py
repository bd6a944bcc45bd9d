"""Run a separation engine on the Celery worker's machine: no network, no account.

The engine comes from ``AISTEMSPLITTER["ENGINE"]`` and ``["ENGINE_OPTIONS"]``.
This backend is strict: it only accepts the models its engine serves (it never
emulates a hosted model it cannot run), so a job's model is what really ran.

Each separation runs in a child process of its own
(:mod:`~django_aistemsplitter.engines.isolation`) unless ``ENGINE_IN_SUBPROCESS``
is False: an engine that crashes in native code or is killed for its memory then
fails its job with ``ENGINE_CRASHED`` instead of killing the worker (and, with
late acknowledgement, every worker the message is delivered to next).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django_aistemsplitter import contract
from django_aistemsplitter.backends.base import InProcessBackend, LocalResult, ProgressCallback
from django_aistemsplitter.conf import get_setting
from django_aistemsplitter.engines import Engine, get_engine
from django_aistemsplitter.engines.files import separate_file
from django_aistemsplitter.engines.isolation import separate_in_child
from django_aistemsplitter.filestreams import open_stored
from django_aistemsplitter.jobs import heartbeat_interval
from django_aistemsplitter.workdirs import remove_dir, staging_dir

if TYPE_CHECKING:
    from django_aistemsplitter.models import SplitJob

#: Copy buffer for streaming the source out of storage.
CHUNK = 1024 * 1024


class LocalBackend(InProcessBackend):
    name = "local"

    def __init__(self, engine: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.engine_name = engine or get_setting("ENGINE")
        self.engine_options = dict(get_setting("ENGINE_OPTIONS") or {})
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = get_engine(self.engine_name, **self.engine_options)
        return self._engine

    @property
    def default_model(self) -> str:
        return self.engine.default_model

    def available_models(self) -> list[str]:
        default = self.engine.default_model
        return [default, *sorted(m for m in self.engine.models if m != default)]

    def normalize_model(self, model: str) -> str:
        # Only map the SDK aliases when the engine does not serve the name itself.
        return model if self.engine.serves(model) else contract.normalize_model(model)

    def run(self, job: SplitJob, progress: ProgressCallback) -> LocalResult:
        """Separate the job's audio now, into a temporary directory.

        The source is streamed out of storage into that directory first because
        the engine decodes a local file; the caller stores ``files`` and then
        calls :meth:`LocalResult.cleanup`. In a child process, ``progress`` is
        also called with the last fraction whenever the engine has been quiet
        for a heartbeat interval; whatever it raises stops the child.
        """
        model = self.check_model(job.stem_model)
        workdir = staging_dir()
        try:
            suffix = Path(job.audio.name or "audio").suffix or ".audio"
            source = workdir / f"source{suffix}"
            # Ranges, never the whole object in memory (django-storages' S3 file would).
            reader, _size = open_stored(job.audio)
            with reader as src, open(source, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
            started = time.monotonic()
            if get_setting("ENGINE_IN_SUBPROCESS"):
                result = separate_in_child(
                    self.engine_name,
                    self.engine_options,
                    source,
                    workdir / "stems",
                    model,
                    job.output_format,
                    progress,
                    idle_every=heartbeat_interval(),
                )
            else:
                result = separate_file(
                    self.engine, source, workdir / "stems", model, job.output_format, progress
                )
            source.unlink()
        except BaseException:
            remove_dir(workdir)
            raise
        return LocalResult(
            files=dict(result.stems),
            workdir=workdir,
            duration_seconds=result.duration,
            model=result.model_ran,
            metadata={"engine": self.engine.name, "seconds": time.monotonic() - started},
        )
