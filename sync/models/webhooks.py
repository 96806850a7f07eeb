from __future__ import annotations

from django.db import models

from portal.models import TimestampedModel


class WebhookDelivery(TimestampedModel):
    """One webhook as Wix delivered it: stored before it is acknowledged, processed later."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSING = "processing", "Processing"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored (unknown type)"
        STALE = "stale", "Stale (older revision)"
        MALFORMED = "malformed", "Malformed"
        FAILED = "failed", "Failed"

    site = models.ForeignKey(
        "sync.WixSite", on_delete=models.SET_NULL, null=True, blank=True, related_name="webhook_deliveries"
    )
    wix_event_id = models.CharField("Wix event id", max_length=200)
    event_type = models.CharField(max_length=120, blank=True)
    entity_id = models.CharField(max_length=64, blank=True)
    raw_body = models.TextField()
    payload = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    processing_since = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True, help_text="Retry not before this time.")
    outcome = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "webhook deliveries"
        permissions = [("replay_webhook", "Can replay webhook deliveries")]
        constraints = [
            # Wix delivers at least once: a second copy of an event id is a duplicate.
            models.UniqueConstraint(fields=["site", "wix_event_id"], name="webhook_unique_site_event_id"),
        ]
        indexes = [
            # Health check: the newest delivery; admin: deliveries by date.
            models.Index(fields=["-received_at"], name="webhook_received_idx"),
            # Per-entity timeline.
            models.Index(fields=["entity_id", "received_at"], name="webhook_entity_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type or 'webhook'} {self.wix_event_id} ({self.status})"
