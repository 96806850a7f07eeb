"""What every ticketing system looks like to the push path: one typed base class.

An adapter is built per system and drain. ``plan`` is the database phase (what to send, and
the facts sending needs); ``create`` / ``update`` / ``delete`` are the sending phase, HTTP
only, through the system's client in ``sync.clients``. A system that keeps events says so in
``handles``; by default only policies and ticket definitions are pushed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from sync.clients.base import ExternalError, PushContext, RecordedHttp
from sync.domain.entity_types import EntityType
from sync.models import ExternalSystem, MirrorModel

PayloadOf = Callable[[str, MirrorModel], dict[str, Any]]  # (entity type, mirror) → mapped payload
TargetsOf = Callable[[str], set[str]]  # entity type → the top-level fields its mappings fill


class TicketingAdapter(ABC):
    def __init__(self, system: ExternalSystem) -> None:
        self.system = system

    def handles(self, entity_type: str) -> bool:
        """Whether pushes of this entity type go to this system."""
        return entity_type != EntityType.EVENT

    def plan(
        self,
        *,
        entity_type: str,
        mirror: MirrorModel,
        payload: dict[str, Any] | None,
        payload_of: PayloadOf,
        targets_of: TargetsOf,
    ) -> tuple[dict[str, Any] | None, PushContext]:
        """Database phase: the payload to send and hash (None for a deletion), and the context
        sending needs. By default the mapped payload as it is.

        ``targets_of`` names the top-level fields a mapping fills, so that a value that
        disappeared from Wix can be cleared rather than left as it was.
        """
        return payload, PushContext()

    # Whether ``read_back`` can read the system's records (for drift); a generic REST target
    # describes no read endpoint.
    reads_back = False

    def read_back(
        self, http: RecordedHttp, links: list[tuple[str, str, dict[str, Any]]]
    ) -> list[dict[str, dict[str, Any]] | ExternalError]:
        """Per (entity type, external id, last pushed payload): the fields the system now holds
        otherwise (``{path: {"pushed", "found"}}``), or the error reading it."""
        raise NotImplementedError(f"{type(self).__name__} cannot read records back")

    @abstractmethod
    def create(
        self,
        http: RecordedHttp,
        *,
        entity_type: str,
        payload: dict[str, Any],
        idempotency_key: str,
        context: PushContext | None = None,
    ) -> str:
        """Make the record; returns its external id."""

    @abstractmethod
    def update(
        self,
        http: RecordedHttp,
        *,
        entity_type: str,
        external_id: str,
        payload: dict[str, Any],
        context: PushContext | None = None,
    ) -> None: ...

    @abstractmethod
    def delete(
        self, http: RecordedHttp, *, entity_type: str, external_id: str, context: PushContext | None = None
    ) -> None: ...
