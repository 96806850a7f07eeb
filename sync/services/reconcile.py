"""Reconciliation: compare Wix with the mirrors, event by event, and heal what webhooks missed.

A run is a job of ``portal.jobs`` (claimed once, so a task delivered twice reconciles once).
Each mirrored event is read again from Wix with its policies and ticket definitions: a missed
creation, update or deletion is mirrored and pushed; then the systems that can be read back
(pretix) are compared with what was last pushed (drift). Errors of one event are recorded and
the others go on; the run is *finished with errors* if any.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from portal import jobs
from portal.audit import audit
from sync.clients.wix import WixClient, WixError, WixNotFound
from sync.models import EntityType, Event, OutboundWork, ReconciliationRun, WixSite
from sync.services.drift import drift_check_event
from sync.services.entities import CHILD_KINDS, EVENT
from sync.services.mirrors import MirrorDataError, UpsertOutcome
from sync.services.push import push_enqueue
from sync.services.sites import site_wix_client

log = logging.getLogger(__name__)

DRAIN_TASK = "sync.tasks.reconcile_drain_task"


def reconcile_start(*, site: WixSite, by: Any = None) -> ReconciliationRun:
    run = ReconciliationRun.objects.create(
        site=site,
        retried_by=by if getattr(by, "is_authenticated", False) else None,
        retry_reason="staff: Reconcile with Wix now" if by is not None else "",
    )
    jobs.wake(DRAIN_TASK)
    audit(by, site, f"Started reconciliation #{run.pk}.")
    return run


def reconcile_site(*, site: WixSite, run: ReconciliationRun | None = None) -> ReconciliationRun:
    """Reconcile now, in this process (tests, and a claimed run)."""
    run = run or ReconciliationRun.objects.create(site=site, status=ReconciliationRun.Status.RUNNING)
    ReconciliationRun.objects.filter(pk=run.pk).update(started_at=timezone.now())
    healed: list[dict[str, str]] = []
    errors: list[dict[str, str]] = []
    drift: list[dict[str, Any]] = []
    try:
        client = site_wix_client(site, fail_fast=True)
        for event in Event.objects.filter(site=site, deleted_at__isnull=True):
            try:
                healed += _reconcile_event(client, site, event)
            except (WixError, MirrorDataError) as exc:
                errors.append({"event": event.wix_id, "error": str(exc)})
            # The other side: what staff changed by hand in the ticketing systems.
            rows, drift_errors = drift_check_event(site=site, event_wix_id=event.wix_id)
            drift += rows
            errors += drift_errors
    except Exception as exc:
        log.exception("Reconciliation of %s failed", site)
        errors.append({"event": "", "error": f"{exc.__class__.__name__}: {exc}"})
    status = ReconciliationRun.Status.PARTIAL if errors else ReconciliationRun.Status.SUCCEEDED
    ReconciliationRun.objects.filter(pk=run.pk).update(
        healed=healed,
        errors=errors,
        drift=drift,
        finished_at=timezone.now(),
        status=status,
        claimed_at=None,
        updated_at=timezone.now(),
    )
    run.refresh_from_db()
    return run


def _reconcile_claimed(run_id: int) -> str:
    run = ReconciliationRun.objects.select_related("site").get(pk=run_id)
    return reconcile_site(site=run.site, run=run).status


def reconcile_drain(*, budget_seconds: float = 300.0, woken_at: float | None = None) -> int:
    return jobs.drain(ReconciliationRun, _reconcile_claimed, budget_seconds=budget_seconds, woken_at=woken_at)


def reconcile_all() -> int:
    """Scheduled (daily): a run for every active site."""
    return len([reconcile_start(site=site) for site in WixSite.objects.filter(is_active=True)])


def _reconcile_event(client: WixClient, site: WixSite, event: Event) -> list[dict[str, str]]:
    healed: list[dict[str, str]] = []
    try:
        result = EVENT.upsert(site=site, data=client.get_event(event.wix_id))
        outcome = "missed updated" if result.outcome == UpsertOutcome.UPDATED else ""
    except WixNotFound:
        EVENT.delete(site=site, wix_id=event.wix_id)
        outcome = "missed deletion"
    if outcome:
        # The event itself goes to systems that keep events (pretix); its children follow below.
        healed.append({"entity_type": EntityType.EVENT, "wix_id": event.wix_id, "healed": outcome})
        push_enqueue(
            site=site,
            entity_type=EntityType.EVENT,
            wix_ids=[event.wix_id],
            trigger=OutboundWork.Trigger.RECONCILE,
        )
    if outcome == "missed deletion":
        return healed  # Wix has no children of a deleted event to compare with
    for kind in CHILD_KINDS:
        assert kind.query_of_event is not None
        seen: set[str] = set()
        changed: list[str] = []
        for data in kind.query_of_event(client, event.wix_id):
            seen.add(data["id"])
            upserted = kind.upsert(site=site, data=data).outcome
            if upserted in (UpsertOutcome.CREATED, UpsertOutcome.UPDATED):
                changed.append(data["id"])
                healed.append(
                    {"entity_type": kind.entity_type, "wix_id": data["id"], "healed": f"missed {upserted}"}
                )
        gone = (
            kind.model.objects.filter(site=site, event_wix_id=event.wix_id, deleted_at__isnull=True)
            .exclude(wix_id__in=seen)
            .values_list("wix_id", flat=True)
        )
        for wix_id in list(gone):
            kind.delete(site=site, wix_id=wix_id, event_wix_id=event.wix_id)
            changed.append(wix_id)
            healed.append({"entity_type": kind.entity_type, "wix_id": wix_id, "healed": "missed deletion"})
        if changed:
            push_enqueue(
                site=site,
                entity_type=kind.entity_type,
                wix_ids=changed,
                trigger=OutboundWork.Trigger.RECONCILE,
            )
    return healed
