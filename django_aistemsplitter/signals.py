"""Signals sent as a job moves; connect receivers to react without subclassing.

Every signal's sender is the :class:`~django_aistemsplitter.models.SplitJob` class.
"""

from __future__ import annotations

from django.dispatch import Signal

#: The job was accepted by its backend. Args: ``job``.
split_submitted = Signal()
#: Every stem is stored and the job succeeded. Args: ``job``, ``stems`` (list of Stem).
split_succeeded = Signal()
#: The job failed for good. Args: ``job``, ``error_code``, ``error_message``.
split_failed = Signal()
#: One stem was stored. Args: ``job``, ``stem``.
stem_saved = Signal()
#: A verified webhook delivery was recorded (before processing). Args: ``event``
#: (WebhookEvent), ``created`` (False for a duplicate delivery).
webhook_received = Signal()
