"""Retention: webhook bodies and the bodies of calls are dropped after ``RETENTION_DAYS``.

They are the bulk of the database (a signed JWT per webhook, request and response excerpts per
call) and worth little once old. The rows themselves stay, as the summary staff and timelines
read: which event, when, what happened, the HTTP status, how long it took. A delivery that
failed keeps its body whatever its age, so it can still be replayed.

Pruning goes in batches of ``RETENTION_BATCH`` rows, each its own short transaction, oldest
first, so a first run over a large table never holds a long lock (SQLite has one writer) and
an interrupted run simply continues next time. Partial indexes on the rows that still hold a
body keep each batch's lookup small however many rows were pruned before.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from sync.models import SyncLog, TicketDefinitionRefresh, WebhookDelivery

# Deliveries whose body may still be needed: open ones, and failed ones staff may replay.
KEEP_BODY = (*WebhookDelivery.OPEN, WebhookDelivery.Status.FAILED)


@dataclass(frozen=True)
class Pruned:
    webhook_bodies: int
    call_bodies: int
    cutoff: dt.datetime
    finished: bool  # False when the time budget ran out first (the next run continues)
    refreshes: int = 0  # finished ticket definition refreshes deleted (one per order burst)


def retention_prune(
    *,
    now: dt.datetime | None = None,
    days: int | None = None,
    batch: int | None = None,
    budget_seconds: float = 240.0,
) -> Pruned:
    days = settings.RETENTION_DAYS if days is None else days
    batch = batch or settings.RETENTION_BATCH
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    deadline = time.monotonic() + budget_seconds
    webhooks = (
        WebhookDelivery.objects.filter(received_at__lt=cutoff)
        .exclude(raw_body="")
        .exclude(status__in=KEEP_BODY)
        .order_by("received_at")
    )
    calls = (
        SyncLog.objects.filter(created_at__lt=cutoff)
        .filter(~Q(request_excerpt="") | ~Q(response_excerpt=""))
        .exclude(status=SyncLog.Status.SENDING)
        .order_by("created_at")
    )
    # Refreshes leave nothing worth keeping once done: the mirror's history has the change.
    refreshes = TicketDefinitionRefresh.objects.filter(
        status=TicketDefinitionRefresh.Status.DONE, finished_at__lt=cutoff
    ).order_by("finished_at")
    counts = {WebhookDelivery: 0, SyncLog: 0, TicketDefinitionRefresh: 0}
    finished = True
    blanks: tuple[tuple[QuerySet[Any], dict[str, Any] | None], ...] = (
        (webhooks, {"raw_body": "", "payload": None}),
        (calls, _NO_EXCERPTS),
        (refreshes, None),  # deleted
    )
    for queryset, blank in blanks:
        while True:
            if time.monotonic() > deadline:
                finished = False
                break
            with transaction.atomic():
                pks = list(queryset.values_list("pk", flat=True)[:batch])
                rows = queryset.model.objects.filter(pk__in=pks)
                if pks and blank is not None:
                    rows.update(**blank)
                elif pks:
                    rows.delete()
            counts[queryset.model] += len(pks)
            if len(pks) < batch:
                break
    return Pruned(
        counts[WebhookDelivery], counts[SyncLog], cutoff, finished, refreshes=counts[TicketDefinitionRefresh]
    )


_NO_EXCERPTS = {"request_excerpt": "", "response_excerpt": ""}
