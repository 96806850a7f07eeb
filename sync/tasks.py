"""django-q2 entry points: thin, take primary keys, call one service, return an outcome."""

from __future__ import annotations

from sync.models import ReconciliationRun, WixSite
from sync.services.backfill import backfill_execute, backfill_sweep
from sync.services.push import STUCK_AFTER, push_dispatch, push_drain
from sync.services.resync import reconcile_site, reconcile_start
from sync.services.webhook_handlers import webhook_dispatch, webhook_drain, webhook_process
from sync.services.webhook_limits import webhook_rejections_flush


def backfill_run_task(run_id: int) -> str:
    return backfill_execute(run_id=run_id)


def backfill_sweep_task() -> str:
    counts = backfill_sweep()
    return f"died={counts['died']} requeued={counts['requeued']}"


def push_drain_task() -> str:
    return push_drain()


def push_dispatch_task() -> str:
    counts = push_dispatch()
    return " ".join(f"{key}={value}" for key, value in counts.items())


def reconcile_site_task(run_id: int) -> str:
    run = ReconciliationRun.objects.select_related("site").get(pk=run_id)
    if run.status != ReconciliationRun.Status.QUEUED:
        return "duplicate"
    return reconcile_site(site=run.site, run=run).status


def reconcile_all_task() -> str:
    runs = [reconcile_start(site=site) for site in WixSite.objects.filter(is_active=True)]
    return f"queued {len(runs)}"


def webhook_process_task(delivery_id: int) -> str:
    outcome = webhook_process(delivery_id=delivery_id)
    # Then whatever else is due, so that a burst is not processed at the queue's pace.
    others = webhook_drain(budget_seconds=30)
    return f"{outcome} (+{others})" if others else outcome


def webhook_dispatch_task() -> str:
    # The same "its worker stopped answering" limit as pushes in flight.
    queued = webhook_dispatch(stuck_after=STUCK_AFTER)
    return f"queued {queued}, refusals counted {webhook_rejections_flush()}"
