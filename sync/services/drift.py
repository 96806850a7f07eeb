"""Drift: fields changed by hand in an external system since the portal last pushed them.

Reconciliation reads each linked record back (systems whose adapter can: pretix) and compares
it with the link's last pushed payload. What differs is kept on the link (the admin lists it
per entity); the system's ``drift_action`` says whether the Wix values are then pushed again
(overwrite) or the hand edits stay (report only).
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from sync.clients.base import CallList, ExternalError, RecordedHttp
from sync.models import (
    DriftAction,
    EntityType,
    ExternalLink,
    ExternalSystem,
    OutboundWork,
    Policy,
    TicketDefinition,
    WixSite,
)
from sync.services.push import PushCache, push_enqueue


def _event_links(system: ExternalSystem, site: WixSite, event_wix_id: str) -> list[ExternalLink]:
    """The event's link and its policies' and tickets' (live ones, with a payload to compare)."""
    wix_ids = {event_wix_id}
    for model in (Policy, TicketDefinition):
        wix_ids |= set(
            model.objects.filter(site=site, event_wix_id=event_wix_id, deleted_at__isnull=True).values_list(
                "wix_id", flat=True
            )
        )
    return list(
        ExternalLink.objects.filter(
            system=system, site=site, wix_id__in=wix_ids, deleted_at__isnull=True, last_payload__isnull=False
        ).order_by("entity_type", "wix_id")
    )


def drift_check_event(
    *, site: WixSite, event_wix_id: str, systems: list[ExternalSystem] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Read back one event's records from each system that can; store and act on what drifted.

    Returns (drift report rows, errors), for the reconciliation run.
    """
    systems = systems if systems is not None else list(ExternalSystem.objects.filter(is_active=True))
    cache = PushCache()
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    for system in systems:
        adapter = cache.adapter(system)
        links = _event_links(system, site, event_wix_id) if adapter.reads_back else []
        if not links:
            continue
        http = RecordedHttp(CallList(), timeout=system.timeout)
        try:
            reports = adapter.read_back(
                http, [(k.entity_type, k.external_id, k.last_payload or {}) for k in links]
            )
        except Exception as exc:  # a secret missing, pretix down: say so, check the rest
            errors.append({"event": event_wix_id, "error": f"{system}: drift not read: {exc}"})
            continue
        now = timezone.now()
        overwrite: dict[str, list[str]] = {}
        for link, report in zip(links, reports, strict=True):
            if isinstance(report, ExternalError):
                errors.append({"event": event_wix_id, "error": f"{system} {link.external_id}: {report}"})
                continue
            ExternalLink.objects.filter(pk=link.pk).update(drift=report, drift_checked_at=now)
            if not report:
                continue
            action = system.drift_action
            rows.append(
                {
                    "system": system.name,
                    "entity_type": link.entity_type,
                    "wix_id": link.wix_id,
                    "external_id": link.external_id,
                    "fields": sorted(report),
                    "action": "overwritten" if action == DriftAction.OVERWRITE else "kept",
                }
            )
            if action == DriftAction.OVERWRITE:
                overwrite.setdefault(link.entity_type, []).append(link.wix_id)
        for entity_type, wix_ids in overwrite.items():
            # Forget what was pushed, so the push sends the Wix values again (an unchanged
            # payload would otherwise make no call).
            ExternalLink.objects.filter(system=system, entity_type=entity_type, wix_id__in=wix_ids).update(
                last_payload_hash=""
            )
            if entity_type == EntityType.POLICY:
                wix_ids = wix_ids[:1]  # one push sends the event's whole list
            push_enqueue(
                site=site,
                entity_type=entity_type,
                wix_ids=wix_ids,
                trigger=OutboundWork.Trigger.RECONCILE,
                systems=[system],
            )
    return rows, errors
