"""Mirrors of Wix entities: the raw JSON as Wix sent it, plus the columns staff filter on.

The raw JSON is the truth; the columns are derived from it by the upsert services and
exist so that the admin can filter and sort without reading JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django.db import models

from portal.models import TimestampedModel

if TYPE_CHECKING:
    from sync.models.sites import WixSite


class MirrorModel(TimestampedModel):
    """Fields every mirrored entity has. ``deleted_at`` set means a tombstone: final."""

    wix_id = models.CharField("Wix id", max_length=64)
    revision = models.BigIntegerField(null=True, blank=True)
    wix_created_date = models.DateTimeField(null=True, blank=True)
    wix_updated_date = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    # Each concrete mirror declares its own ``site`` (its own reverse name); the services
    # handle the three alike, so the type says they all have one.
    objects: ClassVar[models.Manager[Any]] = models.Manager()
    if TYPE_CHECKING:
        site: WixSite
        site_id: int

    class Meta:
        abstract = True

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class Event(MirrorModel):
    class Status(models.TextChoices):
        UPCOMING = "UPCOMING"
        STARTED = "STARTED"
        ENDED = "ENDED"
        CANCELED = "CANCELED"
        DRAFT = "DRAFT"
        UNKNOWN = "UNKNOWN_EVENT_STATUS"

    site = models.ForeignKey("sync.WixSite", on_delete=models.CASCADE, related_name="events")
    title = models.CharField(max_length=200, blank=True)
    slug = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=32, choices=Status.choices, blank=True)
    start_date = models.DateTimeField(null=True, blank=True)
    end_date = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["start_date", "title"]
        constraints = [
            models.UniqueConstraint(fields=["site", "wix_id"], name="event_unique_site_wix_id"),
        ]
        indexes = [
            # Admin: events of a site by date (the default list order, filtered by site).
            models.Index(fields=["site", "start_date"], name="event_site_start_idx"),
        ]

    def __str__(self) -> str:
        return self.title or self.wix_id


class Policy(MirrorModel):
    site = models.ForeignKey("sync.WixSite", on_delete=models.CASCADE, related_name="policies")
    event = models.ForeignKey(
        Event, on_delete=models.SET_NULL, null=True, blank=True, related_name="policies"
    )
    event_wix_id = models.CharField("Wix event id", max_length=64, db_index=True)
    name = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name_plural = "policies"
        ordering = ["event_wix_id", "wix_created_date"]
        constraints = [
            models.UniqueConstraint(fields=["site", "wix_id"], name="policy_unique_site_wix_id"),
        ]

    def __str__(self) -> str:
        return self.name or self.wix_id


class TicketDefinition(MirrorModel):
    class PricingMethod(models.TextChoices):
        FIXED = "fixed", "Fixed price"
        OPTIONS = "options", "Pricing options"
        GUEST = "guest", "Guest price (pay what you want)"

    class SaleStatus(models.TextChoices):
        SCHEDULED = "SALE_SCHEDULED", "Scheduled"
        STARTED = "SALE_STARTED", "Started"
        ENDED = "SALE_ENDED", "Ended"
        UNKNOWN = "UNKNOWN_SALE_STATUS", "Unknown"

    site = models.ForeignKey("sync.WixSite", on_delete=models.CASCADE, related_name="ticket_definitions")
    event = models.ForeignKey(
        Event, on_delete=models.SET_NULL, null=True, blank=True, related_name="ticket_definitions"
    )
    event_wix_id = models.CharField("Wix event id", max_length=64, db_index=True)
    name = models.CharField(max_length=200, blank=True)
    hidden = models.BooleanField(default=False)
    pricing_method = models.CharField(max_length=16, choices=PricingMethod.choices, blank=True)
    # The fixed price, the guest minimum, or the lowest option price.
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    initial_limit = models.IntegerField(null=True, blank=True)
    unsold_count = models.IntegerField(null=True, blank=True, help_text="Empty when unlimited or unknown.")
    sold_count = models.IntegerField(null=True, blank=True)
    sold_out = models.BooleanField(default=False)
    sale_status = models.CharField(max_length=32, choices=SaleStatus.choices, blank=True)
    sale_start = models.DateTimeField(null=True, blank=True)
    sale_end = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["event_wix_id", "wix_created_date"]
        constraints = [
            models.UniqueConstraint(fields=["site", "wix_id"], name="ticketdef_unique_site_wix_id"),
            models.CheckConstraint(
                condition=models.Q(unsold_count__isnull=True) | models.Q(unsold_count__gte=0),
                name="ticketdef_unsold_not_negative",
            ),
        ]
        indexes = [
            # Sale-start scheduling: definitions whose sale starts after now.
            models.Index(fields=["sale_start"], name="ticketdef_sale_start_idx"),
        ]

    def __str__(self) -> str:
        return self.name or self.wix_id


class MirrorChange(models.Model):
    """History of a mirror: one row per create, update or deletion, with what changed."""

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        UPDATED = "updated", "Updated"
        DELETED = "deleted", "Deleted"

    site = models.ForeignKey("sync.WixSite", on_delete=models.CASCADE, related_name="+")
    entity_type = models.CharField(max_length=32)
    wix_id = models.CharField("Wix id", max_length=64)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    revision = models.BigIntegerField(null=True, blank=True)
    changed_fields = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Per-entity timeline.
            models.Index(fields=["entity_type", "wix_id", "-created_at"], name="mirrorchange_entity_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.entity_type} {self.wix_id} {self.kind} (revision {self.revision})"
