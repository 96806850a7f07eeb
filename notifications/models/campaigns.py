"""Sale-start campaigns and their ledger: one ``Notification`` per campaign, channel and address."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from django.db import models

from portal.models import Job


class SaleStartCampaign(Job):
    """One email per event and sale start: the definitions whose sale starts then, listed together.

    A job of ``portal.jobs``: due at ``sale_start`` (``not_before``), it resolves the recipients
    and writes the ledger; the ``Notification`` rows then go out as jobs of their own.
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        RESOLVING = "resolving", "Resolving recipients"
        SENDING = "sending", "Sending"  # the ledger is written: see its notifications
        BLOCKED = "blocked", "Blocked (staff must act)"
        MISSED = "missed", "Missed (waits for staff)"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    WAITING = Status.SCHEDULED
    CLAIMED = Status.RESOLVING
    DEAD = Status.FAILED
    RETRYABLE = (Status.BLOCKED, Status.MISSED)
    # Statuses the planner may still move, merge or cancel.
    OPEN: ClassVar[tuple[str, ...]] = (Status.SCHEDULED, Status.BLOCKED, Status.MISSED)

    site = models.ForeignKey("sync.WixSite", on_delete=models.CASCADE, related_name="sale_start_campaigns")
    event_wix_id = models.CharField("Wix event id", max_length=64)
    event = models.ForeignKey(
        "sync.Event", on_delete=models.SET_NULL, null=True, blank=True, related_name="sale_start_campaigns"
    )
    sale_start = models.DateTimeField()
    sale_end = models.DateTimeField(null=True, blank=True, help_text="The earliest end of its definitions.")
    ticket_definition_wix_ids = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    blocked_reason = models.TextField(blank=True)
    released_at = models.DateTimeField(null=True, blank=True, help_text="When its ledger was written.")
    recipients = models.PositiveIntegerField(null=True, blank=True)
    cancelled_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["sale_start", "pk"]
        permissions = [
            ("send_campaign", "Can send a sale-start campaign now (or a test of it)"),
            ("cancel_campaign", "Can cancel a sale-start campaign"),
        ]
        constraints = [
            # One email per event and start time (sent, sending or to come; cancelled ones aside).
            models.UniqueConstraint(
                fields=["site", "event_wix_id", "sale_start"],
                condition=~models.Q(status="cancelled"),
                name="campaign_unique_event_start",
            ),
        ]
        indexes = [
            # The planner: an event's campaigns.
            models.Index(fields=["site", "event_wix_id"], name="campaign_event_idx"),
            # The drain and the console: campaigns waiting, by when they are due.
            models.Index(
                fields=["not_before"], condition=models.Q(status="scheduled"), name="campaign_waiting_idx"
            ),
        ]

    def __str__(self) -> str:
        name = self.event.title if self.event else self.event_wix_id
        return f"{name}: sale starts {self.sale_start:%Y-%m-%d %H:%M} UTC"


class Notification(Job):
    """The exactly-once guard: written (unique per campaign, channel and address) before any
    send, then sent once. A row whose message's fate is unknown (its worker died, or the
    connection broke, after the message went) is ``uncertain``: never re-sent by itself (staff
    decide), so nobody is emailed twice."""

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        PUSH = "push", "Push webhook"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"
        UNCERTAIN = "uncertain", "Uncertain (may or may not have gone out)"

    WAITING = Status.QUEUED
    CLAIMED = Status.SENDING
    DEAD = Status.FAILED
    RETRYABLE = (Status.UNCERTAIN,)
    STUCK_AFTER: ClassVar[dt.timedelta] = dt.timedelta(minutes=10)

    campaign = models.ForeignKey(SaleStartCampaign, on_delete=models.CASCADE, related_name="notifications")
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.EMAIL)
    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    message_id = models.CharField("Message-ID", max_length=200, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Written just before the message goes to the server (over SMTP: before the end of its
    # data), and only once the server took the row before: of a dead worker's rows handed over
    # in its claim (handed_at >= claimed_at), the last may have gone out (uncertain) and the
    # others did; one never handed over did not (it is sent again).
    handed_at = models.DateTimeField(
        null=True, blank=True, help_text="When its message was last handed to the mail server."
    )

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "channel", "email"], name="notification_unique_campaign_address"
            ),
        ]
        indexes = [
            # The drain: queued rows in order.
            models.Index(fields=["id"], condition=models.Q(status="queued"), name="notification_queued_idx"),
            # A campaign's progress (counts by status).
            models.Index(fields=["campaign", "status"], name="notification_campaign_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.status})"
