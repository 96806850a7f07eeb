"""Alerts to the operators: an email per incident step, sent once, as a job."""

from __future__ import annotations

from django.db import models

from portal.models import Job


class TargetAlert(Job):
    """One email about one external system's incident: it started failing, it was paused, it
    recovered. Unique per system, kind and incident, so an incident sends each at most once,
    however many workers see it (no storm)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    class Kind(models.TextChoices):
        FAILING = "failing", "Started failing"
        PAUSED = "paused", "Paused"
        RECOVERED = "recovered", "Recovered"

    WAITING, CLAIMED, DEAD = Status.QUEUED, Status.SENDING, Status.FAILED

    system = models.ForeignKey("sync.ExternalSystem", on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    incident = models.DateTimeField(help_text="When the incident started (the first failed call).")
    subject = models.CharField(max_length=200)
    body = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    sent_to = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["system", "kind", "incident"], name="alert_once_per_incident"),
        ]

    def __str__(self) -> str:
        return self.subject
