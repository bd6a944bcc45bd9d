"""The interface every split backend implements, in the spirit of Django's email backends.

A backend turns a :class:`~django_aistemsplitter.models.SplitJob` into stems.
There are two kinds, and a backend is one or the other by its base class:

* :class:`RemoteBackend` hands the audio to a service and learns the outcome
  later, through webhooks or polling: :meth:`~RemoteBackend.submit` and
  :meth:`~RemoteBackend.fetch` return the service's
  :class:`~django_aistemsplitter.client.types.Split`, whose stem URLs are then
  downloaded;
* :class:`InProcessBackend` does the work inside the Celery worker:
  :meth:`~InProcessBackend.run` reports progress through a callback and returns
  the stem files on local disk as a :class:`LocalResult`.

The tasks pick their path by type (``isinstance``), never by a flag, so each kind
only has the methods that make sense for it.

To write a third backend, subclass one of the two, set ``name``, implement
:meth:`BaseBackend.available_models` and :attr:`BaseBackend.default_model`, then
either ``submit``/``fetch`` (remote) or ``run`` (in-process), and point
``AISTEMSPLITTER["BACKEND"]`` at its dotted path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from django_aistemsplitter import contract
from django_aistemsplitter.exceptions import UnsupportedModelError
from django_aistemsplitter.workdirs import remove_dir

if TYPE_CHECKING:
    from django_aistemsplitter.client.types import Split
    from django_aistemsplitter.models import SplitJob

__all__ = ["BaseBackend", "InProcessBackend", "LocalResult", "ProgressCallback", "RemoteBackend"]

#: Called by in-process backends with the fraction done (0.0 to 1.0).
ProgressCallback = Callable[[float], None]


class BaseBackend:
    """What both kinds share: a name and the models served; build with :func:`~.get_backend`."""

    #: Short name stored on each job (``SplitJob.backend``) to route later calls.
    name: ClassVar[str] = ""
    #: Whether a job may give a URL instead of a file (the service fetches it).
    accepts_urls: ClassVar[bool] = False

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
        """The canonical name of ``model`` (the SDK aliases ``4s``/``6s`` resolved)."""
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

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class RemoteBackend(BaseBackend):
    """A service does the split; its outcome arrives by webhook or by polling."""

    accepts_urls = True

    def submit(self, job: SplitJob) -> Split:
        """Start the split of ``job``; return the remote split as created.

        Must be safe to call twice for the same job: send the job's
        ``idempotency_key`` so a redelivered task replays, not duplicates.
        """
        raise NotImplementedError

    def fetch(self, job: SplitJob) -> Split:
        """The current remote state of ``job`` (it has a ``remote_id``)."""
        raise NotImplementedError

    def uses_webhooks(self) -> bool:
        """True when the outcome will be pushed to us; otherwise jobs are polled."""
        return False


@dataclass
class LocalResult:
    """What :meth:`InProcessBackend.run` returns: finished stems on local disk.

    ``files`` (stem name -> path) lie inside ``workdir``, which the caller removes
    with :meth:`cleanup` once the stems are stored.
    """

    files: Mapping[str, Path]
    workdir: Path | None = None
    duration_seconds: float | None = None
    model: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def cleanup(self) -> None:
        if self.workdir is not None:
            remove_dir(self.workdir)


class InProcessBackend(BaseBackend):
    """The split runs inside the worker that picks the job up."""

    def run(self, job: SplitJob, progress: ProgressCallback) -> LocalResult:
        """Separate ``job``'s audio now, calling ``progress`` as work gets done.

        Safe to call twice: each call works in a directory of its own, and the
        caller stores the result under a row lock, so a second run stores nothing.
        """
        raise NotImplementedError
