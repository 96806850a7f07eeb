"""Coalesced refreshes of a ticket definition's sales details (Order Confirmed → Get)."""

from __future__ import annotations

from django.db import models

from portal.models import Job


class TicketDefinitionRefresh(Job):
    """One pending Get Ticket Definition for a definition that sold tickets.

    Orders do not each call Wix: an Order Confirmed upserts the one waiting row of its
    definition, due a short window later (``TICKET_REFRESH_WINDOW_SECONDS``), so a burst of
    orders makes one Get. A row being worked does not absorb new orders (they make the next
    waiting row), so an order confirmed during a Get is never lost. Wix failing keeps the
    mirror's last good value and the row is retried on its schedule.
    """

    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    WAITING, CLAIMED, DEAD = Status.WAITING, Status.RUNNING, Status.FAILED

    site = models.ForeignKey("sync.WixSite", on_delete=models.CASCADE, related_name="+")
    wix_id = models.CharField("Wix ticket definition id", max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING)
    orders = models.PositiveIntegerField(default=1, help_text="Orders this one Get answers for.")
    outcome = models.CharField(max_length=64, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "ticket definition refresh"
        constraints = [
            # The coalescing: at most one waiting refresh per definition; orders join it.
            models.UniqueConstraint(
                fields=["site", "wix_id"],
                condition=models.Q(status="waiting"),
                name="tdrefresh_one_waiting_per_definition",
            ),
        ]
        indexes = [
            # The drain: due waiting rows, soonest first.
            models.Index(
                fields=["not_before", "id"], condition=models.Q(status="waiting"), name="tdrefresh_due_idx"
            ),
            # Retention: the finished rows, oldest first.
            models.Index(
                fields=["finished_at"], condition=models.Q(status="done"), name="tdrefresh_done_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"Refresh {self.wix_id} ({self.status})"
