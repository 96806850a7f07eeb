"""Staff-driven sync: resync (real or dry run), link repair, and reconciliation with Wix."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Model, QuerySet

from portal.audit import audit
from sync.clients.base import ExternalError
from sync.domain.mapping import MappingError
from sync.models import (
    EntityType,
    Event,
    ExternalLink,
    ExternalSystem,
    LinkRepair,
    OutboundWork,
    Policy,
    TicketDefinition,
    WixSite,
)
from sync.services.push import PushCache, PushDecision, push_decide, push_enqueue, system_handles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EntityRef:
    site: WixSite
    entity_type: str
    wix_id: str


def refs_of_events(events: Iterable[Event]) -> list[EntityRef]:
    """The events, and every policy and ticket definition (tombstones included, so deletions
    reach the target); events go only to systems that keep them."""
    refs: list[EntityRef] = []
    for event in events:
        refs.append(EntityRef(event.site, EntityType.EVENT, event.wix_id))
        for model, entity_type in [
            (Policy, EntityType.POLICY),
            (TicketDefinition, EntityType.TICKET_DEFINITION),
        ]:
            ids = model.objects.filter(site=event.site, event_wix_id=event.wix_id).values_list(
                "wix_id", flat=True
            )
            refs += [EntityRef(event.site, entity_type, wix_id) for wix_id in ids]
    return refs


def refs_of_mirrors(mirrors: Iterable[Policy | TicketDefinition]) -> list[EntityRef]:
    return [
        EntityRef(
            m.site, EntityType.POLICY if isinstance(m, Policy) else EntityType.TICKET_DEFINITION, m.wix_id
        )
        for m in mirrors
    ]


def refs_of_links(links: Iterable[ExternalLink]) -> list[EntityRef]:
    return [EntityRef(link.site, link.entity_type, link.wix_id) for link in links]


@dataclass(frozen=True)
class Selection:
    """Entities staff named by Wix id (or a whole site), as refs, and the rows to audit."""

    site: WixSite
    entity_type: str
    refs: list[EntityRef]
    named: list[Model]  # the mirrors named; empty when the whole site was meant
    missing: list[str]  # Wix ids the portal has no mirror of


def entities_select(*, site: WixSite, entity_type: str, wix_ids: Iterable[str] = ()) -> Selection:
    """Events (with their policies and ticket definitions), or policies, or ticket definitions
    of ``site`` by Wix id; no ids: every one of that type the site has (tombstones included,
    so that deletions reach the systems)."""
    wanted = list(dict.fromkeys(wix_ids))
    found: list[Any]
    if entity_type == EntityType.EVENT:
        found = list(_named(Event.objects.filter(site=site), wanted))
        refs = refs_of_events(found)
    else:
        model = Policy if entity_type == EntityType.POLICY else TicketDefinition
        found = list(_named(model.objects.filter(site=site), wanted))
        refs = refs_of_mirrors(found)
    missing = sorted(set(wanted) - {row.wix_id for row in found})
    return Selection(site, entity_type, refs, found if wanted else [], missing)


def _named(rows: QuerySet, wix_ids: list[str]) -> QuerySet:
    rows = rows.select_related("site").order_by("pk")
    return rows.filter(wix_id__in=wix_ids) if wix_ids else rows


def resync_selection(
    *, selection: Selection, systems: Iterable[ExternalSystem] | None = None, by: Any, via: str
) -> int:
    """Queue pushes of a selection and record who asked in the history of what was named
    (or of the site, for a whole site)."""
    systems = list(systems) if systems else None
    queued = resync(refs=selection.refs, systems=systems)
    to = f" to {', '.join(s.name for s in systems)}" if systems else ""
    scope = "" if selection.named else f" every {EntityType(selection.entity_type).label.lower()}"
    audit(by, selection.named or selection.site, f"Resynced{scope}{to} ({queued} push(es) queued; {via}).")
    return queued


def resync(
    *,
    refs: Iterable[EntityRef],
    systems: Iterable[ExternalSystem] | None = None,
    trigger: str = OutboundWork.Trigger.RESYNC,
) -> int:
    """Queue pushes; returns how many new work rows were queued (pending ones are joined)."""
    grouped: dict[tuple[int, str], list[EntityRef]] = defaultdict(list)
    for ref in refs:
        grouped[(ref.site.pk, ref.entity_type)].append(ref)
    systems = list(systems) if systems is not None else list(ExternalSystem.objects.filter(is_active=True))
    queued = 0
    for group in grouped.values():
        queued += push_enqueue(
            site=group[0].site,
            entity_type=group[0].entity_type,
            wix_ids=[r.wix_id for r in group],
            trigger=trigger,
            systems=systems,
            drains=2,
        )
    return queued


@dataclass(frozen=True)
class PlanRow:
    system: ExternalSystem
    ref: EntityRef
    action: str
    external_id: str = ""
    payload: dict[str, Any] | None = None
    error: str = ""


def resync_plan(
    *, refs: Iterable[EntityRef], systems: Iterable[ExternalSystem] | None = None
) -> list[PlanRow]:
    """The creates, updates and deletes a resync would make, without making them."""
    systems = list(systems) if systems is not None else list(ExternalSystem.objects.filter(is_active=True))
    rows: list[PlanRow] = []
    cache = PushCache()
    for ref in refs:
        for system in systems:
            if not system_handles(system, ref.entity_type, cache):
                continue
            try:
                decision = push_decide(
                    system=system, site=ref.site, entity_type=ref.entity_type, wix_id=ref.wix_id, cache=cache
                )
            except (MappingError, ExternalError) as exc:
                rows.append(PlanRow(system, ref, "error", error=str(exc)))
                continue
            rows.append(
                PlanRow(
                    system,
                    ref,
                    decision.action,
                    external_id=decision.link.external_id if decision.link else "",
                    payload=_sent(decision),
                )
            )
    return rows


def _sent(decision: PushDecision) -> dict[str, Any] | None:
    """What the push would send; a create also what only a create takes (pretix: the currency)."""
    if not decision.calls or decision.payload is None:
        return None
    if decision.action == "create":
        return {**decision.payload, **decision.context.create_only}
    return decision.payload


def link_repair(*, link: ExternalLink, new_external_id: str, reason: str, user: Any) -> LinkRepair:
    """Point a link at another external record, with an audit row. The next push updates it."""
    new_external_id = new_external_id.strip()
    if not new_external_id or not reason.strip():
        raise ValueError("A repair needs the new external id and a reason.")
    with transaction.atomic():
        locked = ExternalLink.objects.select_for_update().get(pk=link.pk)
        repair = LinkRepair.objects.create(
            link=locked,
            old_external_id=locked.external_id,
            new_external_id=new_external_id,
            reason=reason.strip(),
            user=user,
        )
        locked.external_id = new_external_id
        # Unknown what the repaired record holds: the next push must send the payload.
        locked.last_payload_hash = ""
        locked.last_payload, locked.external_facts, locked.drift = None, {}, {}
        locked.full_clean()
        locked.save()
    audit(user, link, f"Repaired: {repair.old_external_id} → {new_external_id} ({reason.strip()}).")
    return repair
