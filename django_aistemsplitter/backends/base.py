"""The interface every split backend implements, in the spirit of Django's email backends.

A backend turns a :class:`~django_aistemsplitter.models.SplitJob` into stems.
Two kinds exist:

* remote backends (``is_remote = True``) hand the audio to a service and learn
  the outcome later, through webhooks or polling (:meth:`BaseBackend.fetch`);
  the stems are then downloaded from the URLs in the returned :class:`Split`;
* in-process backends (``is_remote = False``) do the work inside the Celery
  worker during :meth:`BaseBackend.submit` and hand back the stem files on disk.

Both return the same :class:`Submission`, whose ``split`` uses the API client's
:class:`~django_aistemsplitter.client.types.Split`, so the state-mirroring code
(:func:`django_aistemsplitter.jobs.apply_remote_split`) has one input type.

To write a third backend, subclass :class:`BaseBackend`, set ``name`` and
``is_remote``, implement :meth:`available_models`, :attr:`default_model` and
:meth:`submit` (and :meth:`fetch` when remote), and point
``AISTEMSPLITTER["BACKEND"]`` at its dotted path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from django_aistemsplitter import contract
from django_aistemsplitter.client.types import Split
from django_aistemsplitter.exceptions import UnsupportedModelError
from django_aistemsplitter.workdirs import remove_dir

if TYPE_CHECKING:
    from django_aistemsplitter.models import SplitJob

__all__ = ["BaseBackend", "Submission"]


@dataclass
class Submission:
    """What :meth:`BaseBackend.submit` returns.

    ``split`` is the state right after submitting (its ``id`` is the remote id;
    empty for in-process backends, which create nothing remote). ``files`` is
    only set by in-process backends: finished stems on local disk, inside
    ``workdir``, which the caller removes with :meth:`cleanup` once ingested.
    """

    split: Split
    files: Mapping[str, Path] = field(default_factory=dict)
    workdir: Path | None = None

    @property
    def remote_id(self) -> str:
        return self.split.id

    @property
    def status(self) -> str:
        return self.split.status

    def cleanup(self) -> None:
        if self.workdir is not None:
            remove_dir(self.workdir)


class BaseBackend:
    """Base class of split backends; instantiate through :func:`~.get_backend`."""

    #: Short name stored on each job (``SplitJob.backend``) to route later calls.
    name: ClassVar[str] = ""
    #: True when the outcome arrives later (webhook or poll) and stems are URLs.
    is_remote: ClassVar[bool] = True

    def __init__(self, **options: Any) -> None:
        self.options = options

    @property
    def default_model(self) -> str:
        """The model used when neither the caller nor ``DEFAULT_MODEL`` names one."""
        raise NotImplementedError

    def available_models(self) -> list[str]:
        """Model names this backend accepts, default first."""
        raise NotImplementedError

    def normalize_model(self, model: str) -> str:
        return contract.normalize_model(model)

    def check_model(self, model: str) -> str:
        """The normalised ``model``; :class:`UnsupportedModelError` when not served.

        Checked before a job is created so a typo fails at the call site, not
        minutes later inside a worker.
        """
        normalized = self.normalize_model(model)
        models = self.available_models()
        if normalized not in models:
            raise UnsupportedModelError(
                f"The {self.name!r} backend does not serve model {model!r}; "
                f"available: {', '.join(models)}."
            )
        return normalized

    def validate(self, job: SplitJob) -> None:
        """Refuse a job this backend cannot run (raise); called before it is saved."""
        self.check_model(job.stem_model)
        if job.output_format not in contract.OUTPUT_FORMATS:
            raise ValueError(
                f"Unknown output format {job.output_format!r}; "
                f"use one of {', '.join(contract.OUTPUT_FORMATS)}."
            )
        if not job.audio and not job.source_url:
            raise ValueError("A split job needs audio or a source URL.")

    def submit(self, job: SplitJob) -> Submission:
        """Start (remote) or do (in-process) the split of ``job``.

        Must be safe to call twice for the same job: remote backends send the
        job's ``idempotency_key`` so a redelivered task replays, not duplicates.
        """
        raise NotImplementedError

    def uses_webhooks(self) -> bool:
        """True when the outcome will be pushed to us; otherwise jobs are polled."""
        return False

    def fetch(self, job: SplitJob) -> Split:
        """The current remote state of ``job`` (remote backends only)."""
        raise NotImplementedError(f"the {self.name!r} backend has nothing to fetch")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
