"""pretix, database phase: what each push sends, built from the mirrors and links.

Runs before any request (see ``PlanningAdapter`` in sync.clients.base): the payload it returns
is what is hashed and sent; the facts (the event's slug or how to make it, the sibling
policies) go with it to the sending phase, which touches no database.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from sync.clients.base import ExternalError, PayloadOf, PushContext, TargetsOf
from sync.models import (
    EntityType,
    Event,
    ExternalLink,
    ExternalSystem,
    MirrorModel,
    Policy,
    TicketDefinition,
)
from sync.services.mapping import MappingRow, payload_hash

EVENT_META = "wix_event_id"
ITEM_META = "wix_ticket_definition_id"
OPTION_META = "wix_option_id"
SLUG_MAX = 50
# Item fields cleared (sent as null) when the mapping fills them but Wix no longer has a value.
NULLABLE = {
    EntityType.EVENT: {"date_to", "location"},
    EntityType.TICKET_DEFINITION: {"description", "available_from", "available_until"},
}

# (source, target, transform, argument, required): what a new pretix system starts with.
PRETIX_DEFAULT_MAPPINGS: dict[str, list[MappingRow]] = {
    EntityType.EVENT: [
        ("title", "name.en", "text", "", True),
        ("slug", "slug", "text", "", True),
        ("dateAndTimeSettings.startDate", "date_from", "datetime", "", True),
        ("dateAndTimeSettings.endDate", "date_to", "datetime", "", False),
        ("dateAndTimeSettings.timeZoneId", "timezone", "text", "", False),
        ("location.name", "location.en", "text", "", False),
    ],
    EntityType.TICKET_DEFINITION: [
        ("name", "name.en", "text", "", True),
        ("description", "description.en", "text", "", False),
        ("pricingMethod.fixedPrice.value", "default_price", "decimal", "", False),
        ("pricingMethod.guestPrice.value", "guest_price", "decimal", "", False),
        ("pricingMethod.pricingOptions.optionDetails[*].name", "variations[*].value.en", "text", "", False),
        (
            "pricingMethod.pricingOptions.optionDetails[*].price.value",
            "variations[*].default_price",
            "decimal",
            "",
            False,
        ),
        ("salePeriod.startDate", "available_from", "datetime", "", False),
        ("salePeriod.endDate", "available_until", "datetime", "", False),
        ("hidden", "active", "enum_map", '{"true": false, "false": true}', False),
        ("initialLimit", "quota.size", "integer", "", False),
        ("", "admission", "constant", "true", False),
    ],
    EntityType.POLICY: [
        ("", "text.en", "template", "{name}: {body}", False),
    ],
}


def pretix_slug(value: Any, fallback: str) -> str:
    """pretix slugs: letters, digits, dots and dashes, starting with a letter or digit."""
    slug = re.sub(r"[^a-z0-9.-]+", "-", str(value or "").lower()).strip("-.")[:SLUG_MAX].rstrip("-.")
    return slug or f"wix-{fallback[:8]}".lower()


def _first_text(value: Any) -> str:
    if isinstance(value, dict):
        return next((str(v) for v in value.values() if v), "")
    return str(value or "")


class PretixPlanner:
    def __init__(self, system: ExternalSystem) -> None:
        self.system = system

    def handles(self, entity_type: str) -> bool:
        return entity_type in (EntityType.EVENT, EntityType.TICKET_DEFINITION, EntityType.POLICY)

    def plan(
        self,
        *,
        entity_type: str,
        mirror: MirrorModel,
        payload: dict[str, Any] | None,
        payload_of: PayloadOf,
        targets_of: TargetsOf,
    ) -> tuple[dict[str, Any] | None, PushContext]:
        context = PushContext(facts={"wix_id": mirror.wix_id})
        if entity_type == EntityType.EVENT:
            assert isinstance(mirror, Event)
            planned = (
                self._event_payload(mirror, payload, targets_of(entity_type)) if payload is not None else None
            )
            return planned, context
        event_wix_id = mirror.raw.get("eventId") or getattr(mirror, "event_wix_id", "")
        context.facts["event"] = self._event_facts(mirror.site_id, event_wix_id, payload_of, targets_of)
        if entity_type == EntityType.POLICY:
            texts = self._policy_plan(mirror, event_wix_id, payload_of, context)
            context.facts["confirm_texts"] = texts  # a delete sends the list without it
            return texts, context
        if payload is None:
            return None, context
        return self._item_payload(mirror, payload, targets_of(entity_type)), context

    def _event_payload(self, event: Event, payload: dict[str, Any], targets: set[str]) -> dict[str, Any]:
        body: dict[str, Any] = {key: None for key in NULLABLE[EntityType.EVENT] & targets}
        body.update(payload)
        body["slug"] = pretix_slug(payload.get("slug") or event.slug, event.wix_id)
        body["meta_data"] = {**(payload.get("meta_data") or {}), EVENT_META: event.wix_id}
        if not body.get("currency"):
            body["currency"] = self._event_currency(event)
        body.setdefault("has_subevents", False)
        return body

    def _event_currency(self, event: Event) -> str:
        """The currency of the event's tickets, as Wix events have none of their own."""
        for raw in TicketDefinition.objects.filter(
            site_id=event.site_id, event_wix_id=event.wix_id, deleted_at__isnull=True
        ).values_list("raw", flat=True)[:20]:
            method = raw.get("pricingMethod") or {}
            for money in [method.get("fixedPrice"), method.get("guestPrice")] + [
                o.get("price") for o in (method.get("pricingOptions") or {}).get("optionDetails") or []
            ]:
                if isinstance(money, dict) and money.get("currency"):
                    return str(money["currency"])
        return self.system.default_currency

    def _event_facts(
        self, site_id: int, event_wix_id: str, payload_of: PayloadOf, targets_of: TargetsOf
    ) -> dict[str, Any]:
        link = ExternalLink.objects.filter(
            system=self.system, entity_type=EntityType.EVENT, wix_id=event_wix_id
        ).first()
        facts: dict[str, Any] = {"wix_id": event_wix_id}
        if link is not None and link.deleted_at is None:
            facts["slug"] = link.external_id
        event = Event.objects.filter(site_id=site_id, wix_id=event_wix_id).first()
        if event is not None and not event.is_deleted:
            # Also when linked: needed to rebuild the event if it was deleted in pretix.
            payload = self._event_payload(
                event, payload_of(EntityType.EVENT, event), targets_of(EntityType.EVENT)
            )
            # The hash the event's own push would compute: an event made here is not sent again.
            facts["payload"], facts["payload_hash"] = payload, payload_hash(payload)
        elif "slug" not in facts:
            raise ExternalError(
                f"Wix event {event_wix_id} is not mirrored yet, so its pretix event cannot be made"
                if event is None
                else f"Wix event {event_wix_id} is deleted; its tickets and policies are not pushed",
                permanent=event is not None,
            )
        return facts

    def _policy_plan(
        self, policy: MirrorModel, event_wix_id: str, payload_of: PayloadOf, context: PushContext
    ) -> dict[str, Any]:
        """The event's whole confirm_texts list, in Wix order (creation order), live policies only."""
        siblings = list(
            Policy.objects.filter(site_id=policy.site_id, event_wix_id=event_wix_id, deleted_at__isnull=True)
            .exclude(raw={})
            .order_by("wix_created_date", "pk")
        )
        texts = [payload_of(EntityType.POLICY, p).get("text") for p in siblings]
        context.facts["recheck"] = [p.wix_id for p in siblings]
        context.facts["shared_link_ids"] = list(
            ExternalLink.objects.filter(
                system=self.system, entity_type=EntityType.POLICY, wix_id__in=[p.wix_id for p in siblings]
            ).values_list("pk", flat=True)
        )
        return {"confirm_texts": [t for t in texts if t]}

    def _item_payload(self, td: MirrorModel, payload: dict[str, Any], targets: set[str]) -> dict[str, Any]:
        body: dict[str, Any] = {key: None for key in NULLABLE[EntityType.TICKET_DEFINITION] & targets}
        body.update(payload)
        body.setdefault("active", True)
        body["meta_data"] = {**(body.get("meta_data") or {}), ITEM_META: td.wix_id}
        options = ((td.raw.get("pricingMethod") or {}).get("pricingOptions") or {}).get("optionDetails") or []
        variations: list[dict[str, Any]] = [v for v in body.get("variations") or [] if isinstance(v, dict)]
        for position, variation in enumerate(variations):
            option = options[position] if position < len(options) else {}
            variation["position"] = position
            variation["meta_data"] = {
                **(variation.get("meta_data") or {}),
                OPTION_META: str(option.get("optionId") or position),
            }
        if variations:
            body["variations"] = variations
        else:
            body.pop("variations", None)
        guest = body.pop("guest_price", None)
        if guest is not None:
            body["free_price"], body["default_price"] = True, guest
        elif "free_price" in targets or "guest_price" in targets:
            body.setdefault("free_price", False)
        if body.get("default_price") is None:
            prices = [Decimal(str(v["default_price"])) for v in variations if v.get("default_price")]
            body["default_price"] = str(min(prices)) if prices else "0.00"
        quota: dict[str, Any] = body["quota"] if isinstance(body.get("quota"), dict) else {}
        body["quota"] = {"name": quota.get("name") or _first_text(body.get("name")) or td.wix_id, **quota}
        body["quota"].setdefault("size", None)  # no Wix limit: unlimited
        return body
