"""Abstract models every app builds on. This module imports no app."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from django.conf import settings
from django.db import models
from knox.models import AuthToken

# How much of a token the admin shows: enough to tell tokens apart, far too little to use.
MASKED_CHARS = 8


class TimestampedModel(models.Model):
    """Every table says when a row appeared and when it last changed."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Job(TimestampedModel):
    """A unit of background work that is a row before it is a task (see ``portal.jobs``).

    Each kind keeps its own ``status`` choices (they say what the work achieved, in the
    words staff read) and names which of them play the engine's three roles:

    - ``WAITING``: due once ``not_before`` has passed (``None`` = now);
    - ``CLAIMED``: a worker owns it since ``claimed_at`` (long jobs renew it as a heartbeat);
      one whose ``claimed_at`` is older than ``STUCK_AFTER`` lost its worker and is released;
    - ``DEAD``: gave up after its retry schedule, or failed for good; staff may retry it.

    Any other status is final. ``retried_by`` / ``retry_reason`` say who or what last sent it
    round again by hand.
    """

    WAITING: ClassVar[str]
    CLAIMED: ClassVar[str]
    DEAD: ClassVar[str]
    # Statuses staff may send round again (besides DEAD, e.g. a delivery stuck waiting).
    RETRYABLE: ClassVar[tuple[str, ...]] = ()
    STUCK_AFTER: ClassVar[dt.timedelta] = dt.timedelta(minutes=10)

    status = models.CharField(max_length=16)
    attempts = models.PositiveIntegerField(default=0)
    not_before = models.DateTimeField(null=True, blank=True, help_text="Not due before this time.")
    claimed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a worker took it (or last said it is still at it)."
    )
    last_error = models.TextField(blank=True)
    retried_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    retry_reason = models.CharField(
        max_length=200, blank=True, help_text="Who or what last sent it round again by hand."
    )

    class Meta:
        abstract = True


class ApiToken(AuthToken):
    """An API token as the admin shows it: knox's row (only a SHA-512 digest of the token is
    stored), named by the token's first characters instead of the digest."""

    class Meta:
        proxy = True
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.masked} ({self.user})"

    @property
    def masked(self) -> str:
        return f"{self.token_key[:MASKED_CHARS]}…"
