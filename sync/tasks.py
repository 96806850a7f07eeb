"""django-q2 entry points: thin, call one service, return an outcome for the task list.

Work is rows, not tasks (``portal.jobs``): a drain task takes the wake-up time and works
whatever of its kind is due; the one scheduled sweep releases what lost its worker.
"""

from __future__ import annotations

from portal.jobs import dispatch
from sync.services.alerts import alerts_drain
from sync.services.backfill import backfill_drain
from sync.services.push import push_drain
from sync.services.reconcile import reconcile_all, reconcile_drain
from sync.services.retention import retention_prune
from sync.services.ticket_refresh import ticket_refresh_drain
from sync.services.webhook_handlers import webhook_drain
from sync.services.webhook_limits import webhook_rejections_flush


def push_drain_task(woken_at: float | None = None) -> str:
    return push_drain(woken_at=woken_at)


def webhook_drain_task(woken_at: float | None = None) -> str:
    return f"processed {webhook_drain(woken_at=woken_at)}"


def ticket_refresh_drain_task(woken_at: float | None = None) -> str:
    return f"refreshed {ticket_refresh_drain(woken_at=woken_at)}"


def backfill_drain_task(woken_at: float | None = None) -> str:
    return backfill_drain(woken_at=woken_at)


def reconcile_drain_task(woken_at: float | None = None) -> str:
    return f"reconciled {reconcile_drain(woken_at=woken_at)}"


def alerts_drain_task(woken_at: float | None = None) -> str:
    return f"sent {alerts_drain(woken_at=woken_at)}"


def reconcile_all_task() -> str:
    return f"queued {reconcile_all()}"


def retention_prune_task() -> str:
    pruned = retention_prune()
    more = "" if pruned.finished else "; more next time"
    return (
        f"pruned {pruned.webhook_bodies} webhook bodies and {pruned.call_bodies} call bodies, "
        f"deleted {pruned.refreshes} finished ticket refreshes{more}"
    )


def jobs_dispatch_task() -> str:
    """Scheduled every minute: the one sweep over every kind of job."""
    report = dispatch()
    busy = ", ".join(
        f"{label}: {counts['released']} released, {counts['due']} due"
        for label, counts in report.items()
        if counts["released"] or counts["due"]
    )
    return f"{busy or 'nothing due'}; refusals counted {webhook_rejections_flush()}"
