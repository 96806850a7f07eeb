"""What is broken now in sync, for ``portal.health``: dead letters, failed deliveries, stuck
backfills, paused systems, and work no worker has taken."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone

from portal import jobs
from portal.health import Problem
from portal.models import Job
from sync.models import (
    BackfillRun,
    BackfillStep,
    ExternalSystem,
    OutboundWork,
    TicketDefinitionRefresh,
    WebhookDelivery,
)


def _admin(name: str, query: str = "") -> str:
    return reverse(f"admin:sync_{name}_changelist") + (f"?{query}" if query else "")


def sync_problems() -> list[Problem]:
    dead = OutboundWork.objects.filter(status=OutboundWork.Status.DEAD).count()
    failed = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.FAILED).count()
    limit = timezone.now() - jobs.stuck_after_default()
    # A run is stuck when nothing about it moved for longer than a claim may last.
    stuck = (
        BackfillRun.objects.filter(status__in=BackfillRun.ACTIVE_STATUSES, updated_at__lt=limit)
        .exclude(steps__updated_at__gte=limit)
        .distinct()
        .count()
    )
    paused = ExternalSystem.objects.filter(paused_at__isnull=False).count()
    found = [
        Problem(
            "paused_systems",
            paused,
            f"{paused} external system(s) paused after failing: resume them when they are back",
            _admin("externalsystem"),
        ),
        Problem(
            "dead_letters",
            dead,
            f"{dead} dead letter(s): pushes that gave up",
            _admin("outboundwork", "status__exact=dead"),
        ),
        Problem(
            "failed_deliveries",
            failed,
            f"{failed} webhook deliver(ies) failed",
            _admin("webhookdelivery", "status__exact=failed"),
        ),
        Problem(
            "stuck_backfills",
            stuck,
            f"{stuck} backfill(s) not moving",
            _admin("backfillrun", "status__in=queued,listing,running"),
        ),
    ]
    found += [
        _stale_sales_details(),
        _overdue(OutboundWork, "outboundwork"),
        _overdue(WebhookDelivery, "webhookdelivery"),
        _overdue(BackfillStep, "backfillrun"),
        _overdue(TicketDefinitionRefresh, "ticketdefinitionrefresh"),
    ]
    return found


def _stale_sales_details() -> Problem:
    """Definitions whose latest refresh gave up: their sold counts (and the counters showing
    them) are the last good ones until an order or a resync refreshes them again."""
    stale = jobs.dead_latest(TicketDefinitionRefresh, by=("site", "wix_id"))
    return Problem(
        "stale_sales_details",
        stale,
        f"{stale} ticket definition(s) could not be refreshed from Wix: counters show the last good count",
        _admin("ticketdefinitionrefresh", "status__exact=failed"),
    )


def _overdue(model: type[Job], admin: str) -> Problem:
    late = jobs.overdue(model)
    summary = f"{late} {model._meta.verbose_name_plural} waiting over 5 min: are the workers running?"
    return Problem(f"overdue_{model._meta.model_name}", late, summary, _admin(admin))
