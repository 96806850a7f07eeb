"""What a push of one entity to one system would do: create, update, delete or nothing.

Shared by the push itself and the dry run. Reads the database only; the payload is what the
mappings make of the mirror, completed by the adapter's plan (pretix adds the event and the
sibling policies), and hashed so that an unchanged entity costs no call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sync.clients.base import PushContext
from sync.domain.mapping import MappingSpec, mapping_apply, payload_hash
from sync.models import ExternalLink, ExternalSystem, FieldMapping, MirrorModel, WixSite
from sync.services.adapters import TicketingAdapter, adapter_for
from sync.services.entities import entity_kind


class PushOutcome:
    CREATED, UPDATED, DELETED, UNCHANGED, MISSING = "created", "updated", "deleted", "unchanged", "missing"
    RECREATED = "recreated"


class PushCache:
    """What every push to a system needs (adapter, mappings), read once per drain.

    A drain lasts at most a minute, so a mapping edited in the admin takes effect with the
    next drain; without a cache each push would read them again.
    """

    def __init__(self) -> None:
        self._specs: dict[tuple[int, str], list[MappingSpec]] = {}
        self._adapters: dict[int, TicketingAdapter] = {}
        self._systems: dict[int, ExternalSystem] = {}
        self._sites: dict[int, WixSite] = {}

    def system(self, pk: int) -> ExternalSystem:
        if pk not in self._systems:
            self._systems[pk] = ExternalSystem.objects.get(pk=pk)
        return self._systems[pk]

    def site(self, pk: int) -> WixSite:
        if pk not in self._sites:
            self._sites[pk] = WixSite.objects.get(pk=pk)
        return self._sites[pk]

    def targets(self, system: ExternalSystem, entity_type: str) -> set[str]:
        return {spec.target_field.split(".")[0].split("[")[0] for spec in self.specs(system, entity_type)}

    def specs(self, system: ExternalSystem, entity_type: str) -> list[MappingSpec]:
        key = (system.pk, entity_type)
        if key not in self._specs:
            mappings = FieldMapping.objects.filter(system=system, entity_type=entity_type).order_by(
                "order", "pk"
            )
            self._specs[key] = [MappingSpec.of(m) for m in mappings]
        return self._specs[key]

    def adapter(self, system: ExternalSystem) -> TicketingAdapter:
        if system.pk not in self._adapters:
            self._adapters[system.pk] = adapter_for(system)
        return self._adapters[system.pk]


def system_handles(system: ExternalSystem, entity_type: str, cache: PushCache | None = None) -> bool:
    """Whether pushes of this entity type go to this system (events only where it keeps them)."""
    return (cache or PushCache()).adapter(system).handles(entity_type)


def entity_payload(
    system: ExternalSystem, entity_type: str, raw: dict[str, Any], cache: PushCache | None = None
) -> dict[str, Any]:
    return mapping_apply((cache or PushCache()).specs(system, entity_type), raw)


@dataclass(frozen=True)
class PushDecision:
    """What a push of one entity to one system would do."""

    action: str  # "create", "update", "delete", or a PushOutcome for "nothing to do"
    link: ExternalLink | None
    mirror: MirrorModel | None
    payload: dict[str, Any] | None = None
    digest: str = ""
    context: PushContext = field(default_factory=PushContext)

    @property
    def calls(self) -> bool:
        return self.action in ("create", "update", "delete")


def push_decide(
    *, system: ExternalSystem, site: WixSite, entity_type: str, wix_id: str, cache: PushCache | None = None
) -> PushDecision:
    """Raises MappingError when the mapping cannot build a payload for this entity."""
    cache = cache or PushCache()
    mirror = entity_kind(entity_type).model.objects.filter(site=site, wix_id=wix_id).first()
    link = ExternalLink.objects.filter(system=system, entity_type=entity_type, wix_id=wix_id).first()
    if mirror is None:
        return PushDecision(PushOutcome.MISSING, link, mirror)
    payload: dict[str, Any] | None = None
    if mirror.is_deleted:
        if link is None or link.deleted_at is not None:
            return PushDecision(PushOutcome.UNCHANGED, link, mirror)
        action = "delete"
    else:
        payload = entity_payload(system, entity_type, mirror.raw, cache)
        action = "create" if link is None else "update"
    # The adapter completes the payload from related entities (pretix: the event, the sibling
    # policies), so the hash below covers what is really sent.
    payload, context = cache.adapter(system).plan(
        entity_type=entity_type,
        mirror=mirror,
        payload=payload,
        payload_of=lambda et, m: entity_payload(system, et, m.raw, cache),
        targets_of=lambda et: cache.targets(system, et),
    )
    digest = payload_hash(payload) if payload is not None else ""
    unchanged = link is not None and (link.deleted_at is not None or link.last_payload_hash == digest)
    if action == "update" and unchanged:
        return PushDecision(PushOutcome.UNCHANGED, link, mirror, payload, digest, context)
    return PushDecision(action, link, mirror, payload, digest, context)
