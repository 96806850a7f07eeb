"""Ticketing adapters: one per kind of external system, behind one typed base class."""

from __future__ import annotations

from sync.models import ExternalSystem
from sync.services.adapters.base import PayloadOf, TargetsOf, TicketingAdapter
from sync.services.adapters.generic_rest import GenericRestAdapter
from sync.services.adapters.pretix import PretixAdapter

ADAPTERS: dict[str, type[TicketingAdapter]] = {
    ExternalSystem.Kind.GENERIC_REST: GenericRestAdapter,
    ExternalSystem.Kind.PRETIX: PretixAdapter,
}


def adapter_for(system: ExternalSystem) -> TicketingAdapter:
    return ADAPTERS[system.kind](system)


__all__ = ["ADAPTERS", "PayloadOf", "TargetsOf", "TicketingAdapter", "adapter_for"]
