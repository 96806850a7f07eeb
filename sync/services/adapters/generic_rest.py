"""A generic REST system as the push path sees it: its rows turned into a client."""

from __future__ import annotations

from typing import Any

from sync.clients.base import PushContext, RecordedHttp
from sync.clients.generic_rest import Endpoint, GenericRestClient, RestAuth
from sync.domain.entity_types import EntityType
from sync.models import ExternalSystem
from sync.services.adapters.base import TicketingAdapter


class GenericRestAdapter(TicketingAdapter):
    def __init__(self, system: ExternalSystem) -> None:
        super().__init__(system)
        endpoints = {
            e.entity_type: Endpoint(
                create_method=e.create_method,
                create_path=e.create_path,
                update_method=e.update_method,
                update_path=e.update_path,
                delete_method=e.delete_method,
                delete_path=e.delete_path,
                id_path=e.id_path,
            )
            for e in system.endpoints.all()
        }
        auth = RestAuth(
            kind=system.auth_type,
            secret_env=system.auth_secret_env,
            username=system.auth_username,
            header=system.auth_header,
        )
        self.client = GenericRestClient(
            name=str(system), base_url=system.base_url, auth=auth, endpoints=endpoints
        )

    def handles(self, entity_type: str) -> bool:
        """Policies and ticket definitions always (a missing endpoint is a visible dead letter);
        events only where staff described an endpoint for them."""
        return entity_type != EntityType.EVENT or entity_type in self.client.endpoints

    def create(
        self,
        http: RecordedHttp,
        *,
        entity_type: str,
        payload: dict[str, Any],
        idempotency_key: str,
        context: PushContext | None = None,
    ) -> str:
        return self.client.create(
            http, entity_type=entity_type, payload=payload, idempotency_key=idempotency_key
        )

    def update(
        self,
        http: RecordedHttp,
        *,
        entity_type: str,
        external_id: str,
        payload: dict[str, Any],
        context: PushContext | None = None,
    ) -> None:
        self.client.update(http, entity_type=entity_type, external_id=external_id, payload=payload)

    def delete(
        self, http: RecordedHttp, *, entity_type: str, external_id: str, context: PushContext | None = None
    ) -> None:
        self.client.delete(http, entity_type=entity_type, external_id=external_id)
