"""The sandbox's own tables: what a fake Wix site holds, and the webhooks it sent."""

from __future__ import annotations

from django.db import models

from portal.models import TimestampedModel


class SandboxEntity(TimestampedModel):
    """One Wix entity as the fake Wix API returns it (``data`` is the full JSON object)."""

    class Kind(models.TextChoices):
        EVENT = "event", "Event"
        POLICY = "policy", "Policy"
        TICKET_DEFINITION = "ticket_definition", "Ticket definition"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    wix_id = models.CharField(max_length=64, unique=True)
    event_wix_id = models.CharField(max_length=64, blank=True)
    # Wix sorts queries by createdDate; id breaks ties so that offset paging is stable.
    created_date = models.DateTimeField()
    data = models.JSONField()

    class Meta:
        ordering = ["created_date", "wix_id"]
        indexes = [
            # Query Policies / Ticket Definitions by eventId, in createdDate order.
            models.Index(fields=["kind", "event_wix_id", "created_date"], name="sandbox_kind_event_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.data.get('name') or self.data.get('title') or self.wix_id}"


class SandboxEvent(SandboxEntity):
    class Meta:
        proxy = True


class SandboxPolicy(SandboxEntity):
    class Meta:
        proxy = True
        verbose_name_plural = "sandbox policies"


class SandboxTicketDefinition(SandboxEntity):
    class Meta:
        proxy = True


class SandboxKey(TimestampedModel):
    """The sandbox's RSA key pair; it signs webhooks as Wix signs them (RS256, with a kid)."""

    kid = models.CharField(max_length=64, unique=True)
    private_pem = models.TextField()
    public_pem = models.TextField()

    def __str__(self) -> str:
        return f"Sandbox key {self.kid}"


class SandboxFault(TimestampedModel):
    """An injected failure: the next ``remaining`` matching calls answer ``status``."""

    path_contains = models.CharField(max_length=200, blank=True)
    status = models.PositiveSmallIntegerField()
    remaining = models.PositiveIntegerField(default=1)
    retry_after = models.PositiveIntegerField(null=True, blank=True)
    message = models.CharField(max_length=200, blank=True)
    code = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"{self.status} x{self.remaining} on '{self.path_contains or '*'}'"


class SandboxWebhook(TimestampedModel):
    """A webhook the sandbox sent (or will send) to the portal."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    event_type = models.CharField(max_length=120)
    entity_id = models.CharField(max_length=64, blank=True)
    envelope = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.entity_id} ({self.status})"


class SandboxTicketingRecord(TimestampedModel):
    """A record in the sandbox's fake ticketing system (a generic REST target)."""

    collection = models.CharField(max_length=64)
    record_id = models.CharField(max_length=64, unique=True)
    data = models.JSONField()
    idempotency_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    deleted = models.BooleanField(default=False)
    writes = models.PositiveIntegerField(default=1, help_text="Creates and updates received.")

    class Meta:
        ordering = ["collection", "created_at"]

    def __str__(self) -> str:
        return f"{self.collection}/{self.record_id}"


class SandboxEmailSubscription(TimestampedModel):
    """An address's marketing-email consent on the fake site (Wix Email Subscriptions, §4a)."""

    class Status(models.TextChoices):
        NOT_SET = "NOT_SET"
        PENDING = "PENDING"
        SUBSCRIBED = "SUBSCRIBED"
        UNSUBSCRIBED = "UNSUBSCRIBED"

    class Deliverability(models.TextChoices):
        NOT_SET = "NOT_SET"
        VALID = "VALID"
        BOUNCED = "BOUNCED"
        SPAM_COMPLAINT = "SPAM_COMPLAINT"
        INACTIVE = "INACTIVE"

    wix_id = models.CharField(max_length=64, unique=True)
    email = models.EmailField(unique=True)
    subscription_status = models.CharField(max_length=16, choices=Status.choices, default=Status.NOT_SET)
    deliverability_status = models.CharField(
        max_length=16, choices=Deliverability.choices, default=Deliverability.VALID
    )

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return f"{self.email} ({self.subscription_status}, {self.deliverability_status})"
