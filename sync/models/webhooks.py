from __future__ import annotations

from django.db import models

from portal.models import Job


class WebhookDelivery(Job):
    """One webhook as Wix delivered it: stored before it is acknowledged, processed later.

    The row is the job (no task per delivery): a drain claims due deliveries one by one, each
    entity's in ``sequence`` order (Wix's ``entityEventSequence``, else the carried revision),
    never two of one entity at once.
    """

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSING = "processing", "Processing"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored (unknown type)"
        STALE = "stale", "Stale (older revision)"
        MALFORMED = "malformed", "Malformed"
        FAILED = "failed", "Failed"

    WAITING, CLAIMED, DEAD = Status.RECEIVED, Status.PROCESSING, Status.FAILED
    # Replay also hurries a delivery waiting for its retry, or one stuck in processing.
    RETRYABLE = (Status.RECEIVED, Status.PROCESSING)
    OPEN = (Status.RECEIVED, Status.PROCESSING)

    site = models.ForeignKey(
        "sync.WixSite", on_delete=models.SET_NULL, null=True, blank=True, related_name="webhook_deliveries"
    )
    wix_event_id = models.CharField("Wix event id", max_length=200)
    event_type = models.CharField(max_length=120, blank=True)
    entity_id = models.CharField(max_length=64, blank=True)
    sequence = models.BigIntegerField(
        default=0, help_text="Order among the entity's deliveries (entityEventSequence or revision)."
    )
    raw_body = models.TextField()
    payload = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
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
            # Retention: the oldest deliveries that still hold a body.
            models.Index(
                fields=["received_at"], condition=~models.Q(raw_body=""), name="webhook_body_kept_idx"
            ),
            # The drain: waiting deliveries, oldest first.
            models.Index(
                fields=["received_at"], condition=models.Q(status="received"), name="webhook_waiting_idx"
            ),
            # The drain: an entity's open deliveries, by sequence (one at a time, in order).
            models.Index(
                fields=["site", "entity_id", "sequence"],
                condition=models.Q(status__in=["received", "processing"]),
                name="webhook_entity_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type or 'webhook'} {self.wix_event_id} ({self.status})"
