from __future__ import annotations

from django.conf import settings
from django.db import models

from portal.models import Job


class BackfillRun(Job):
    """One backfill (first upload or resync from Wix) of a site or a single event (a job).

    Claimed, the run reads Wix's list of events, mirrors each event and makes one
    :class:`BackfillStep` per event; workers then backfill the steps in parallel, each
    retried on its own (a run needs no staff to resume after a worker died), and the last
    step to end settles the run.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        LISTING = "listing", "Reading the event list"
        RUNNING = "running", "Backfilling its events"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Finished with errors"
        FAILED = "failed", "Failed"

    WAITING, CLAIMED, DEAD = Status.QUEUED, Status.LISTING, Status.FAILED

    class Trigger(models.TextChoices):
        ADMIN = "admin", "Admin"
        COMMAND = "command", "Management command"
        API = "api", "API"
        QUICKSTART = "quickstart", "Quick start"

    ACTIVE_STATUSES = (Status.QUEUED, Status.LISTING, Status.RUNNING)
    RESUMABLE_STATUSES = (Status.FAILED, Status.PARTIAL)

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
    # Counts over its steps, added as each step ends (the admin shows progress from them).
    fetched = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("start_backfill", "Can start, resume and reconcile backfills")]
        constraints = [
            # One active run per scope: a second "start" returns the run already going.
            models.UniqueConstraint(
                fields=["site"],
                condition=models.Q(event_wix_id="", status__in=["queued", "listing", "running"]),
                name="backfill_one_active_per_site",
            ),
            models.UniqueConstraint(
                fields=["site", "event_wix_id"],
                condition=~models.Q(event_wix_id="") & models.Q(status__in=["queued", "listing", "running"]),
                name="backfill_one_active_per_event",
            ),
        ]
        indexes = [
            # The dispatcher: claimed runs whose claim is old (their worker died).
            models.Index(fields=["status", "claimed_at"], name="backfill_status_claimed_idx"),
        ]

    def __str__(self) -> str:
        scope = f"event {self.event_wix_id}" if self.event_wix_id else "all events"
        return f"Backfill #{self.pk} of {self.site.name}, {scope} ({self.get_status_display()})"

    @property
    def changes(self) -> int:
        return self.created + self.updated


class BackfillStep(Job):
    """One event of a backfill: its policies and ticket definitions read from Wix and mirrored."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    WAITING, CLAIMED, DEAD = Status.QUEUED, Status.RUNNING, Status.FAILED

    run = models.ForeignKey(BackfillRun, on_delete=models.CASCADE, related_name="steps")
    event_wix_id = models.CharField("Wix event id", max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    fetched = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0, help_text="Entities Wix sent that could not be mirrored.")
    fetched_by_type = models.JSONField(
        default=dict, blank=True, help_text='Entities read per type: {"policy": 2, "ticket_definition": 5}.'
    )
    errors = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["run", "event_wix_id"], name="backfill_step_unique_event"),
        ]
        indexes = [
            # The drain: queued steps in the order their runs listed them.
            models.Index(
                fields=["id"], condition=models.Q(status="queued"), name="backfill_step_waiting_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"Backfill #{self.run_id}, event {self.event_wix_id} ({self.get_status_display()})"


class ReconciliationRun(Job):
    """One comparison of Wix with the mirrors of a site, and what it healed (a job)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Finished with errors"
        FAILED = "failed", "Failed"

    WAITING, CLAIMED, DEAD = Status.QUEUED, Status.RUNNING, Status.FAILED

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
