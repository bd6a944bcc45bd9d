"""Split jobs, their stems, and the webhook deliveries that moved them.

Remote state is mirrored (status, progress, credits, errors), status only moves
forward, and that rule is enforced in one place: :meth:`SplitJob.advance`, a
conditional UPDATE, so a late webhook and a poll racing each other cannot move a
job backwards whatever order they land in.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_aistemsplitter import contract
from django_aistemsplitter.compat import check_constraint
from django_aistemsplitter.storage import audio_upload_to, configured_storage, stem_upload_to

if TYPE_CHECKING:
    # mypy 2.x with django-stubs types a member declared as ``"x", _("X")`` as that
    # tuple instead of the (str) member; the checker sees the same values unlabelled.
    class SplitStatus(models.TextChoices):
        PENDING = "pending"
        SUBMITTED = "submitted"
        PROCESSING = "processing"
        DOWNLOADING = "downloading"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

else:

    class SplitStatus(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUBMITTED = "submitted", _("Submitted")
        PROCESSING = "processing", _("Processing")
        DOWNLOADING = "downloading", _("Downloading stems")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")


#: Position of each status; a job may only move to a higher rank.
STATUS_RANK: dict[str, int] = {
    SplitStatus.PENDING: 0,
    SplitStatus.SUBMITTED: 1,
    SplitStatus.PROCESSING: 2,
    SplitStatus.DOWNLOADING: 3,
    SplitStatus.SUCCEEDED: 4,
    SplitStatus.FAILED: 4,
    SplitStatus.CANCELLED: 4,
}
TERMINAL = frozenset({SplitStatus.SUCCEEDED, SplitStatus.FAILED, SplitStatus.CANCELLED})
ACTIVE = frozenset(set(SplitStatus.values) - TERMINAL)
#: The one sanctioned way back: a failed or cancelled job may be retried.
RETRYABLE = frozenset({SplitStatus.FAILED, SplitStatus.CANCELLED})


def statuses_before(status: str) -> list[str]:
    """Statuses from which ``status`` is a forward move."""
    rank = STATUS_RANK[status]
    return [s for s, r in STATUS_RANK.items() if r < rank]


class OutputFormat(models.TextChoices):
    WAV = "wav", "WAV"
    FLAC = "flac", "FLAC"
    MP3 = "mp3", "MP3"


class SplitJobQuerySet(models.QuerySet["SplitJob"]):
    def active(self) -> SplitJobQuerySet:
        return self.filter(status__in=ACTIVE)

    def for_object(self, obj: models.Model) -> SplitJobQuerySet:
        return self.filter(
            content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk)
        )

    def visible_to(self, user: Any) -> SplitJobQuerySet:
        """Users who may view split jobs see every job (model permissions, as in the
        admin, not ``is_staff``); others only their own."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        if may_handle_every_job(user, "view"):
            return self
        return self.filter(owner=user)


def may_handle_every_job(user: Any, action: str) -> bool:
    """Whether ``user`` may ``"view"`` or ``"change"`` split jobs of other users.

    The Django model permissions decide, as in the admin: ``view_splitjob`` (or
    ``change_splitjob``, which includes viewing) to see them, ``change_splitjob``
    to retry or cancel them. Active superusers have every permission.
    """
    opts = SplitJob._meta
    actions = ("view", "change") if action == "view" else (action,)
    return any(user.has_perm(f"{opts.app_label}.{name}_{opts.model_name}") for name in actions)


def _new_idempotency_key() -> str:
    return uuid.uuid4().hex


class SplitJob(models.Model):
    """One request to split one piece of audio into stems."""

    Status = SplitStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="aistemsplitter_jobs",
    )
    # The user's own object this split belongs to (e.g. a Track), if any.
    content_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.SET_NULL, verbose_name=_("source type")
    )
    object_id = models.CharField(_("source id"), max_length=64, blank=True, default="")
    source = GenericForeignKey("content_type", "object_id")
    source_field = models.CharField(_("source field"), max_length=100, blank=True, default="")

    audio = models.FileField(
        _("audio"),
        upload_to=audio_upload_to,
        storage=configured_storage,
        max_length=500,
        blank=True,
    )
    source_url = models.URLField(_("source URL"), max_length=2000, blank=True, default="")
    original_filename = models.CharField(_("file name"), max_length=255, blank=True, default="")

    stem_model = models.CharField(_("model"), max_length=64)
    output_format = models.CharField(
        _("output format"),
        max_length=8,
        choices=OutputFormat.choices,
        default=contract.DEFAULT_OUTPUT_FORMAT,
    )
    backend = models.CharField(_("backend"), max_length=200)
    remote_id = models.CharField(_("remote id"), max_length=128, blank=True, default="")
    # The exact ``input`` sent to the service (upload id or URL), remembered before
    # the create call so a redelivered submit replays an identical request: a new
    # upload (or a freshly presigned URL) under the same idempotency key is a 409.
    remote_input = models.JSONField(_("remote input"), default=dict, blank=True, editable=False)

    status = models.CharField(
        _("status"), max_length=16, choices=SplitStatus.choices, default=SplitStatus.PENDING
    )
    progress = models.FloatField(
        _("progress"), default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    error_code = models.CharField(_("error code"), max_length=64, blank=True, default="")
    error_message = models.TextField(_("error message"), blank=True, default="")

    duration_seconds = models.FloatField(_("duration (s)"), null=True, blank=True)
    credits_used = models.FloatField(_("credits used"), null=True, blank=True)
    estimated_cost = models.DecimalField(
        _("estimated cost (USD)"), max_digits=10, decimal_places=4, null=True, blank=True
    )

    idempotency_key = models.CharField(
        _("idempotency key"),
        max_length=64,
        unique=True,
        default=_new_idempotency_key,
        editable=False,
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    #: Runs of this job's current step that started and have not finished: a worker
    #: that died mid-run leaves its count behind, so a message that keeps killing
    #: workers is noticed (here, not in the broker) and the job fails instead.
    unfinished_runs = models.PositiveIntegerField(_("unfinished runs"), default=0, editable=False)
    #: Last sign of life of the worker running this job (reconcile leaves it alone).
    heartbeat_at = models.DateTimeField(_("heartbeat"), null=True, blank=True, editable=False)
    #: How often reconciliation had to nudge this job; capped by RECONCILE_MAX_ATTEMPTS.
    reconcile_attempts = models.PositiveIntegerField(
        _("reconcile attempts"), default=0, editable=False
    )

    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)

    objects: ClassVar[SplitJobQuerySet] = SplitJobQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        verbose_name = _("split job")
        verbose_name_plural = _("split jobs")
        ordering = ("-created_at",)
        get_latest_by = "created_at"
        # The admin's change list and the API list newest first (-created_at, -id),
        # filtered by one of the indexed columns below; search looks up remote_id
        # exactly and file names by prefix (an expression index that migration 0003
        # adds on PostgreSQL only). So no list page reads the whole table.
        indexes = [
            models.Index(fields=["status", "updated_at"], name="aiss_job_status_updated"),
            models.Index(fields=["owner", "-created_at"], name="aiss_job_owner_created"),
            models.Index(fields=["content_type", "object_id"], name="aiss_job_source"),
            models.Index(fields=["-created_at", "-id"], name="aiss_job_created_id"),
            models.Index(fields=["status", "-created_at", "-id"], name="aiss_job_status_created"),
            models.Index(
                fields=["stem_model", "-created_at", "-id"], name="aiss_job_model_created"
            ),
            models.Index(fields=["backend", "-created_at", "-id"], name="aiss_job_backend_created"),
            models.Index(
                fields=["output_format", "-created_at", "-id"], name="aiss_job_format_created"
            ),
            models.Index(fields=["remote_id"], name="aiss_job_remote_id"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["backend", "remote_id"],
                condition=~models.Q(remote_id=""),
                name="aiss_job_unique_remote_id",
            ),
            check_constraint(
                models.Q(progress__gte=0.0) & models.Q(progress__lte=1.0),
                name="aiss_job_progress_range",
            ),
        ]

    def __str__(self) -> str:
        name = self.original_filename or self.source_url or str(self.pk)[:8]
        return f"{name} ({self.stem_model}, {self.get_status_display()})"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def display_name(self) -> str:
        return self.original_filename or self.source_url.rsplit("/", 1)[-1] or str(self.pk)

    def advance(self, status: str, **fields: Any) -> bool:
        """Move to ``status`` (and set ``fields``) only if that is a forward move.

        Runs as one conditional UPDATE so concurrent writers cannot interleave; on
        success the instance is updated too. Returns False (changing nothing) when
        the job is already at or past ``status``. Moving to the same non-terminal
        status is allowed, to record progress.
        """
        allowed = statuses_before(status)
        if status not in TERMINAL:
            allowed.append(status)
        now = timezone.now()
        values = {"status": status, "updated_at": now, **fields}
        if status in TERMINAL:
            values.setdefault("finished_at", now)
        if status == SplitStatus.SUBMITTED:
            values.setdefault("submitted_at", now)
        updated = type(self).objects.filter(pk=self.pk, status__in=allowed).update(**values)
        if updated:
            for key, value in values.items():
                setattr(self, key, value)
        return bool(updated)

    def reset_for_retry(self) -> bool:
        """Failed/cancelled -> pending with a fresh idempotency key and no remote id.

        The new key makes the next submit a new remote split rather than a replay
        of the failed one. The run, heartbeat and reconcile counters start over,
        and so does the deadline (it runs from the next submission).
        """
        updated = (
            type(self)
            .objects.filter(pk=self.pk, status__in=RETRYABLE)
            .update(
                status=SplitStatus.PENDING,
                progress=0.0,
                error_code="",
                error_message="",
                remote_id="",
                # A direct upload to the service is the job's only audio: its
                # input is kept; any other input is made afresh on the next submit.
                remote_input=models.Case(
                    models.When(audio="", source_url="", then=models.F("remote_input")),
                    default=models.Value({}, output_field=models.JSONField()),
                ),
                submitted_at=None,
                finished_at=None,
                unfinished_runs=0,
                heartbeat_at=None,
                reconcile_attempts=0,
                idempotency_key=_new_idempotency_key(),
                updated_at=timezone.now(),
            )
        )
        if updated:
            self.refresh_from_db()
        return bool(updated)


stem_name_validator = RegexValidator(
    contract.STEM_NAME_RE, _("Stem names are lowercase letters, digits and underscores.")
)


class Stem(models.Model):
    """One separated source of a job, stored in the configured storage."""

    job = models.ForeignKey(
        SplitJob, on_delete=models.CASCADE, related_name="stems", verbose_name=_("job")
    )
    name = models.CharField(_("name"), max_length=32, validators=[stem_name_validator])
    file = models.FileField(
        _("file"), upload_to=stem_upload_to, storage=configured_storage, max_length=500
    )
    format = models.CharField(_("format"), max_length=8, blank=True, default="")
    size = models.BigIntegerField(_("size (bytes)"), null=True, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True, default="")
    duration_seconds = models.FloatField(_("duration (s)"), null=True, blank=True)
    sample_rate = models.PositiveIntegerField(_("sample rate"), null=True, blank=True)
    channels = models.PositiveSmallIntegerField(_("channels"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("stem")
        verbose_name_plural = _("stems")
        ordering = ("job", "id")
        constraints = [
            models.UniqueConstraint(fields=["job", "name"], name="aiss_stem_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} of {self.job_id}"


class WebhookOutcome(models.TextChoices):
    RECEIVED = "received", _("Received")
    PROCESSED = "processed", _("Processed")
    DUPLICATE = "duplicate", _("Duplicate")
    IGNORED = "ignored", _("Ignored (stale or backwards)")
    UNKNOWN_JOB = "unknown_job", _("No matching job")
    ERROR = "error", _("Error")
    MALFORMED = "malformed", _("Signed but malformed")


class WebhookEvent(models.Model):
    """Every verified webhook delivery; the unique event id makes duplicates harmless."""

    Outcome = WebhookOutcome

    event_id = models.CharField(_("event id"), max_length=128, unique=True)
    type = models.CharField(_("type"), max_length=64)
    remote_id = models.CharField(_("remote split id"), max_length=128, db_index=True)
    remote_status = models.CharField(_("remote status"), max_length=16, blank=True, default="")
    job = models.ForeignKey(
        SplitJob,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="webhook_events",
        verbose_name=_("job"),
    )
    payload = models.JSONField(_("payload"))
    deliveries = models.PositiveIntegerField(_("deliveries"), default=1)
    outcome = models.CharField(
        _("outcome"), max_length=16, choices=WebhookOutcome.choices, default=WebhookOutcome.RECEIVED
    )
    received_at = models.DateTimeField(_("received"), auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    #: Why a signed delivery could not be used (outcome ``malformed``); never the body.
    reason = models.CharField(_("reason"), max_length=200, blank=True, default="")

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ("-received_at",)

    def __str__(self) -> str:
        return f"{self.type} {self.remote_id} ({self.event_id})"


class UploadDestination(models.TextChoices):
    S3 = "s3", _("S3 presigned POST")
    HOSTED = "hosted", _("The service's presigned upload")
    APP = "app", _("This site's upload view")


class UploadTicket(models.Model):
    """A short-lived, single-use permission to send one audio file straight to where it is kept.

    A browser or a script asks for a ticket (``POST /splits/uploads/``), sends the
    bytes to the ticket's URL (an S3 bucket, the service's presigned upload, or
    this site's streaming upload view), then creates the split with
    ``upload=<ticket id>``. The bytes never pass through a Django request handler
    except in the last case, where a streaming view writes them at constant memory.

    The ticket is bound to its owner, expires (``UPLOAD_TICKET_TTL``) and is used
    once: :func:`django_aistemsplitter.tickets.redeem` locks the row, and the
    one-to-one ``job`` plus ``used_at`` record the use. What an unused ticket
    uploaded is deleted once it expires.
    """

    Destination = UploadDestination

    #: The ticket id handed to the client: random, so it cannot be guessed.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.CASCADE,
        related_name="aistemsplitter_upload_tickets",
    )
    destination = models.CharField(
        _("destination"), max_length=16, choices=UploadDestination.choices
    )
    backend = models.CharField(_("backend"), max_length=200)
    filename = models.CharField(_("file name"), max_length=255)
    content_type = models.CharField(_("content type"), max_length=100)
    #: The size the client declared, in bytes; the destination refuses anything larger.
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    #: Where the audio lands in STORAGE (destinations "s3" and "app").
    storage_name = models.CharField(_("stored as"), max_length=500, blank=True, default="")
    #: The service's upload (destination "hosted"): its id and the URL it is read back from.
    remote_upload = models.JSONField(_("remote upload"), default=dict, blank=True, editable=False)
    #: Bytes the app's upload view has received so far (an interrupted upload resumes there).
    received_bytes = models.PositiveBigIntegerField(_("received (bytes)"), default=0)
    #: Until when a ``PUT`` to the app's upload view holds the ticket (renewed while it
    #: writes): a lease, not a row lock, so no transaction stays open during an upload,
    #: and one left by a worker that died simply expires.
    writing_until = models.DateTimeField(
        _("being written until"), null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"), db_index=True)
    used_at = models.DateTimeField(_("used"), null=True, blank=True)
    job = models.OneToOneField(
        SplitJob,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="upload_ticket",
        verbose_name=_("job"),
    )

    class Meta:
        verbose_name = _("upload ticket")
        verbose_name_plural = _("upload tickets")
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.filename} ({self.destination}, {self.pk})"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()


# --- files leave storage with their rows ---------------------------------------------

logger = logging.getLogger(__name__)


def delete_file_on_commit(file: models.fields.files.FieldFile, using: str | None = None) -> None:
    """Delete ``file`` from its storage once the current transaction commits.

    Never before: a rolled-back delete keeps its row, which must keep its file.
    Outside a transaction the file goes at once.
    """
    name, storage = file.name, file.storage
    if not name:
        return

    def delete() -> None:
        try:
            storage.delete(name)
        except Exception:
            logger.exception("could not delete %s from storage", name)

    transaction.on_commit(delete, using=using)


@receiver(post_delete, sender=SplitJob, dispatch_uid="aistemsplitter:delete-job-audio")
def _delete_job_audio(sender: type[SplitJob], instance: SplitJob, **kwargs: Any) -> None:
    # However the job goes (admin, API, queryset, cascade), its stored audio goes too;
    # its stems are rows of their own (cascade) and go through the receiver below.
    delete_file_on_commit(instance.audio, kwargs.get("using"))


@receiver(post_delete, sender=Stem, dispatch_uid="aistemsplitter:delete-stem-file")
def _delete_stem_file(sender: type[Stem], instance: Stem, **kwargs: Any) -> None:
    delete_file_on_commit(instance.file, kwargs.get("using"))
