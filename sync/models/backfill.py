from __future__ import annotations

from django.conf import settings
from django.db import models

from portal.models import TimestampedModel


class BackfillRun(TimestampedModel):
    """One backfill (first upload or resync from Wix) of a site or a single event.

    Progress (``done_event_ids``) is saved after each event, so a run that died is resumed
    where it stopped instead of starting over.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Finished with errors"
        FAILED = "failed", "Failed"
        DIED = "died", "Died (worker lost)"

    class Trigger(models.TextChoices):
        ADMIN = "admin", "Admin"
        COMMAND = "command", "Management command"
        API = "api", "API"
        QUICKSTART = "quickstart", "Quick start"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
    RESUMABLE_STATUSES = (Status.FAILED, Status.DIED, Status.PARTIAL)

    site = models.ForeignKey("sync.WixSite", on_delete=models.CASCADE, related_name="backfill_runs")
    event = models.ForeignKey(
        "sync.Event",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="backfill_runs",
        help_text="Empty for a run over every event of the site.",
    )
    event_wix_id = models.CharField("Wix event id", max_length=64, blank=True)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    fetched = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    done_event_ids = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("start_backfill", "Can start, resume and reconcile backfills")]
        constraints = [
            # One active run per scope: a second "start" returns the run already going.
            models.UniqueConstraint(
                fields=["site"],
                condition=models.Q(event_wix_id="", status__in=["queued", "running"]),
                name="backfill_one_active_per_site",
            ),
            models.UniqueConstraint(
                fields=["site", "event_wix_id"],
                condition=~models.Q(event_wix_id="") & models.Q(status__in=["queued", "running"]),
                name="backfill_one_active_per_event",
            ),
        ]
        indexes = [
            # Sweep: running runs whose heartbeat is old.
            models.Index(fields=["status", "heartbeat_at"], name="backfill_status_heartbeat_idx"),
        ]

    def __str__(self) -> str:
        scope = f"event {self.event_wix_id}" if self.event_wix_id else "all events"
        return f"Backfill #{self.pk} of {self.site.name}, {scope} ({self.get_status_display()})"

    @property
    def changes(self) -> int:
        return self.created + self.updated


class ReconciliationRun(TimestampedModel):
    """One comparison of Wix with the mirrors of a site, and what it healed."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Finished with errors"

    site = models.ForeignKey("sync.WixSite", on_delete=models.CASCADE, related_name="reconciliation_runs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    healed = models.JSONField(default=list, blank=True)
    errors = models.JSONField(default=list, blank=True)
    # Records changed by hand in a ticketing system since the last push (see sync.services.drift).
    drift = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Reconciliation #{self.pk} of {self.site.name} ({self.get_status_display()})"

    @property
    def healed_count(self) -> int:
        return len(self.healed)
