"""The one registry of the Wix entity types the portal mirrors.

Everything that works per entity type (backfill, webhooks, resync, reconciliation, push and
the sandbox) asks here for its mirror model, its names in Wix's answers and webhooks, how
to upsert or tombstone it, and how to read it from Wix; no other module keeps a list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sync.clients.wix import WixClient
from sync.models import EntityType, Event, MirrorModel, Policy, TicketDefinition
from sync.services.mirrors import (
    UpsertResult,
    event_delete_from_wix,
    event_upsert_from_wix,
    policy_delete_from_wix,
    policy_upsert_from_wix,
    ticket_definition_delete_from_wix,
    ticket_definition_upsert_from_wix,
)

Upsert = Callable[..., UpsertResult]  # (site=, data=, [event=]) -> result
Delete = Callable[..., UpsertResult]  # (site=, wix_id=, [event_wix_id=], deleted_at=) -> result


@dataclass(frozen=True)
class EntityKind:
    entity_type: EntityType
    model: type[MirrorModel]
    # One entity's key in Wix's answers ({"policy": {...}}) and the list's key in a query.
    wix_key: str
    list_key: str
    # The webhook envelope's entityFqdn; some Wix examples add a segment, so webhooks match
    # on ``fqdn_suffix``.
    fqdn: str
    fqdn_suffix: str
    upsert: Upsert
    delete: Delete
    get: Callable[[WixClient, str], dict[str, Any]]
    # How the children of one event are read (None for events themselves).
    query_of_event: Callable[[WixClient, str], Iterator[dict[str, Any]]] | None = None

    @property
    def label(self) -> str:
        return str(self.entity_type.label)


EVENT = EntityKind(
    entity_type=EntityType.EVENT,
    model=Event,
    wix_key="event",
    list_key="events",
    fqdn="wix.events.v3.event",
    fqdn_suffix=".event",  # wix.events.v3.event, or wix.events.events.v3.event in one example
    upsert=event_upsert_from_wix,
    delete=event_delete_from_wix,
    get=lambda client, wix_id: client.get_event(wix_id),
)
POLICY = EntityKind(
    entity_type=EntityType.POLICY,
    model=Policy,
    wix_key="policy",
    list_key="policies",
    fqdn="wix.events.v2.policy",
    fqdn_suffix=".policy",
    upsert=policy_upsert_from_wix,
    delete=policy_delete_from_wix,
    get=lambda client, wix_id: client.get_policy(wix_id),
    query_of_event=lambda client, event_id: client.query_policies(event_id),
)
TICKET_DEFINITION = EntityKind(
    entity_type=EntityType.TICKET_DEFINITION,
    model=TicketDefinition,
    wix_key="ticketDefinition",
    list_key="ticketDefinitions",
    fqdn="wix.events.v3.ticket_definition",
    # The 2024 examples say wix.events.ticketdef.v3.ticket_definition.
    fqdn_suffix="ticket_definition",
    upsert=ticket_definition_upsert_from_wix,
    delete=ticket_definition_delete_from_wix,
    get=lambda client, wix_id: client.get_ticket_definition(wix_id),
    query_of_event=lambda client, event_id: client.query_ticket_definitions(event_id),
)

ENTITY_KINDS: dict[str, EntityKind] = {kind.entity_type: kind for kind in (EVENT, POLICY, TICKET_DEFINITION)}
# The kinds that belong to an event, in the order a backfill reads them.
CHILD_KINDS: tuple[EntityKind, ...] = (POLICY, TICKET_DEFINITION)


def entity_kind(entity_type: str) -> EntityKind:
    return ENTITY_KINDS[entity_type]


def entity_kind_of_fqdn(fqdn: str) -> EntityKind | None:
    """The kind a webhook's ``entityFqdn`` names, or None for one the portal does not mirror."""
    return next((kind for kind in ENTITY_KINDS.values() if fqdn.endswith(kind.fqdn_suffix)), None)
