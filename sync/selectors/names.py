"""Wix names for rows that only hold a Wix id: staff read "Spring Gala · VIP", not a UUID.

One query per entity type for a whole page of rows, whatever their number.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q
from django.urls import reverse

from sync.domain.entity_types import EntityType
from sync.models import Event, MirrorModel, Policy, TicketDefinition

MODELS: dict[str, type[MirrorModel]] = {
    EntityType.EVENT: Event,
    EntityType.POLICY: Policy,
    EntityType.TICKET_DEFINITION: TicketDefinition,
}


@dataclass(frozen=True)
class EntityName:
    entity_type: str
    wix_id: str
    name: str  # "" while the portal has no mirror of it
    event: str = ""  # the event a policy or ticket definition belongs to
    url: str = ""  # the mirror's admin page (its timeline is on it)
    deleted: bool = False

    @property
    def type_label(self) -> str:
        known = self.entity_type in EntityType.values
        return EntityType(self.entity_type).label if known else self.entity_type


Key = tuple[int, str | None, str]  # site id, entity type (None: any), Wix id


def entity_names(keys: Iterable[Key]) -> dict[tuple[int, str], EntityName]:
    """The mirrors behind ``keys``, by (site id, Wix id); ids the portal has not mirrored are absent."""
    wanted: dict[str, set[tuple[int, str]]] = defaultdict(set)
    for site_id, entity_type, wix_id in keys:
        if not wix_id:
            continue
        for kind in [entity_type] if entity_type in MODELS else MODELS:
            wanted[kind].add((site_id, wix_id))
    found: dict[tuple[int, str], EntityName] = {}
    for kind, pairs in wanted.items():
        model = MODELS[kind]
        match = Q()
        for site_id in {site for site, _ in pairs}:
            match |= Q(site_id=site_id, wix_id__in=[wix for site, wix in pairs if site == site_id])
        rows = model.objects.filter(match)
        if model is Event:
            rows = rows.only("site_id", "wix_id", "title", "deleted_at")
        else:
            rows = rows.select_related("event").only(
                "site_id", "wix_id", "name", "deleted_at", "event__title", "event_wix_id"
            )
        admin_page = f"admin:sync_{model._meta.model_name}_change"
        for mirror in rows:
            event = getattr(mirror, "event", None)
            found[(mirror.site_id, mirror.wix_id)] = EntityName(
                entity_type=kind,
                wix_id=mirror.wix_id,
                name=(mirror.title if isinstance(mirror, Event) else mirror.name) or "(no name)",
                event=event.title if event is not None else "",
                url=reverse(admin_page, args=[mirror.pk]),
                deleted=mirror.deleted_at is not None,
            )
    return found
