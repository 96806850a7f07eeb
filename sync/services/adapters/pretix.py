"""pretix as the push path sees it: the database phase (what each push sends, built from the
mirrors and links) and the adapter joining it to the HTTP client.

The plan runs before any request: the payload it returns is what is hashed and sent; the
facts (the event's slug or how to make it, the sibling policies) go with it to the sending
phase (``sync.clients.pretix.client``), which touches no database.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sync.clients.base import ExternalError, PushContext, RecordedHttp
from sync.clients.pretix.client import PretixClient, PretixConfig
from sync.clients.pretix.drift import drift_read
from sync.clients.pretix.protocol import (
    EVENT_META,
    ITEM_META,
    OPTION_META,
    PRICE_MAX,
    QUOTA_SIZE_MAX,
    TEXT_LIMITS,
    first_text,
    limits_apply,
    pretix_slug,
)
from sync.domain.mapping import MappingRow, payload_hash
from sync.models import (
    EntityType,
    Event,
    ExternalLink,
    ExternalSystem,
    MirrorModel,
    Policy,
    TicketDefinition,
)
from sync.services.adapters.base import PayloadOf, TargetsOf, TicketingAdapter

POLICY_TEMPLATE = "<p><strong>{name}</strong></p>{body}"
# Item fields cleared (sent as null) when the mapping fills them but Wix no longer has a value.
NULLABLE = {
    EntityType.EVENT: {"date_to", "location"},
    EntityType.TICKET_DEFINITION: {"description", "available_from", "available_until"},
}
# Event fields pretix takes once, at creation: never part of an update (or of its hash), so
# that no later edit can flip an event with orders to another currency.
CREATE_ONLY = ("currency", "has_subevents")
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
        # Wix sends the body as HTML; pretix renders confirm texts from Markdown (its rich_text).
        ("body", "text.en", "html_to_markdown", POLICY_TEMPLATE, False),
    ],
}


def ticket_currencies(raw: dict[str, Any]) -> set[str]:
    """The currencies a Wix ticket definition is priced in (fixed, guest and option prices)."""
    method = raw.get("pricingMethod") or {}
    prices = [method.get("fixedPrice"), method.get("guestPrice")] + [
        option.get("price") for option in (method.get("pricingOptions") or {}).get("optionDetails") or []
    ]
    return {str(p["currency"]).upper() for p in prices if isinstance(p, dict) and p.get("currency")}


class PretixPlanner:
    """The database phase of a push to pretix."""

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
            if payload is None:
                return None, context
            planned, context.create_only = self._event_payload(mirror, payload, targets_of(entity_type))
            return planned, context
        event_wix_id = mirror.raw.get("eventId") or getattr(mirror, "event_wix_id", "")
        context.facts["event"] = self._event_facts(mirror.site_id, event_wix_id, payload_of, targets_of)
        if entity_type == EntityType.POLICY:
            texts = self._policy_plan(mirror, event_wix_id, payload_of, context)
            context.facts["confirm_texts"] = texts  # a delete sends the list without it
            return texts, context
        if payload is None:
            return None, context
        context.facts["currency"] = self._ticket_currency(mirror, context.facts["event"])
        return self._item_payload(mirror, payload, targets_of(entity_type)), context

    def _event_payload(
        self, event: Event, payload: dict[str, Any], targets: set[str]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """What an update sends (and the hash covers), and what only a create adds."""
        body: dict[str, Any] = {key: None for key in NULLABLE[EntityType.EVENT] & targets}
        body.update(payload)
        body["slug"] = pretix_slug(payload.get("slug") or event.slug, event.wix_id)
        body["meta_data"] = {**(payload.get("meta_data") or {}), EVENT_META: event.wix_id}
        create_only = {key: body.pop(key) for key in CREATE_ONLY if body.get(key) is not None}
        create_only.setdefault("currency", self._event_currency(event))
        create_only.setdefault("has_subevents", False)
        limits_apply(body, TEXT_LIMITS[EntityType.EVENT])
        return body, create_only

    def _event_currency(self, event: Event) -> str:
        """The currency of the event's first priced ticket, as Wix events have none of their own."""
        for raw in (
            TicketDefinition.objects.filter(
                site_id=event.site_id, event_wix_id=event.wix_id, deleted_at__isnull=True
            )
            .order_by("wix_created_date", "pk")
            .values_list("raw", flat=True)[:20]
        ):
            currencies = sorted(ticket_currencies(raw))
            if currencies:
                return currencies[0]
        return self.system.default_currency

    def _ticket_currency(self, td: MirrorModel, event: dict[str, Any]) -> str | None:
        """The ticket's one currency; a permanent error if pretix's event has another.

        pretix keeps one currency per event, and the portal converts nothing: a ticket priced
        otherwise is for staff to fix on Wix.
        """
        currencies = sorted(ticket_currencies(td.raw))
        name = td.raw.get("name") or td.wix_id
        if len(currencies) > 1:
            raise ExternalError(
                f"Ticket definition {name!r} ({td.wix_id}) is priced in several currencies "
                f"({', '.join(currencies)}); a pretix item has the one currency of its event.",
                permanent=True,
            )
        currency = currencies[0] if currencies else None
        known = event.get("currency")
        if currency and known and currency != known.upper():
            where = f"pretix event {event['slug']}" if event.get("slug") else "the pretix event to be made"
            raise ExternalError(
                f"Ticket definition {name!r} ({td.wix_id}) is priced in {currency}, but {where} "
                f"is in {known}: pretix keeps one currency per event and the portal converts nothing. "
                f"Price the ticket in {known} on Wix.",
                permanent=True,
            )
        return currency

    def _event_facts(
        self, site_id: int, event_wix_id: str, payload_of: PayloadOf, targets_of: TargetsOf
    ) -> dict[str, Any]:
        link = ExternalLink.objects.filter(
            system=self.system, entity_type=EntityType.EVENT, wix_id=event_wix_id
        ).first()
        facts: dict[str, Any] = {"wix_id": event_wix_id}
        if link is not None and link.deleted_at is None:
            facts["slug"] = link.external_id
            # The currency pretix's event really has (None for a link older than this fact:
            # the sending phase reads it then).
            facts["currency"] = (link.external_facts or {}).get("currency")
        event = Event.objects.filter(site_id=site_id, wix_id=event_wix_id).first()
        if event is not None and not event.is_deleted:
            # Also when linked: needed to rebuild the event if it was deleted in pretix.
            payload, facts["create_only"] = self._event_payload(
                event, payload_of(EntityType.EVENT, event), targets_of(EntityType.EVENT)
            )
            # The hash the event's own push would compute: an event made here is not sent again.
            facts["payload"], facts["payload_hash"] = payload, payload_hash(payload)
            if "slug" not in facts:
                facts["currency"] = facts["create_only"]["currency"]
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
        context.recheck = [p.wix_id for p in siblings]
        context.sent_together = list(
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
        body["quota"] = {"name": quota.get("name") or first_text(body.get("name")) or td.wix_id, **quota}
        body["quota"].setdefault("size", None)  # no Wix limit: unlimited
        limits_apply(body, TEXT_LIMITS[EntityType.TICKET_DEFINITION])
        _numbers_check(td, body)
        return body


def _numbers_check(td: MirrorModel, body: dict[str, Any]) -> None:
    """Prices and sizes pretix cannot store are refused here, before any call, naming the field."""
    prices = [("default_price", body.get("default_price"))] + [
        (f"variations[{n}].default_price", v.get("default_price"))
        for n, v in enumerate(body.get("variations") or [])
    ]
    for field, price in prices:
        try:
            amount = Decimal(str(price)) if price is not None else None
        except InvalidOperation:
            continue  # not a number: pretix's own 400 names it
        if amount is not None and not Decimal("0") <= amount <= PRICE_MAX:
            raise ExternalError(
                f"Ticket definition {td.wix_id}: {field} {price} is outside what pretix stores "
                f"(0 to {PRICE_MAX})",
                permanent=True,
            )
    size = body["quota"].get("size")
    if size is not None and not (isinstance(size, int) and 0 <= size <= QUOTA_SIZE_MAX):
        raise ExternalError(
            f"Ticket definition {td.wix_id}: quota size {size!r} is outside what pretix stores "
            f"(0 to {QUOTA_SIZE_MAX}, or none for unlimited)",
            permanent=True,
        )


def pretix_config(system: ExternalSystem) -> PretixConfig:
    return PretixConfig(
        base_url=system.base_url, organizer=system.organizer, token_env=system.auth_secret_env
    )


class PretixAdapter(TicketingAdapter):
    """pretix: the planner reads the database, the client makes the calls."""

    reads_back = True

    def __init__(self, system: ExternalSystem) -> None:
        super().__init__(system)
        self.planner = PretixPlanner(system)
        self.client = PretixClient(pretix_config(system))

    def handles(self, entity_type: str) -> bool:
        return self.planner.handles(entity_type)

    def plan(
        self,
        *,
        entity_type: str,
        mirror: MirrorModel,
        payload: dict[str, Any] | None,
        payload_of: PayloadOf,
        targets_of: TargetsOf,
    ) -> tuple[dict[str, Any] | None, PushContext]:
        return self.planner.plan(
            entity_type=entity_type,
            mirror=mirror,
            payload=payload,
            payload_of=payload_of,
            targets_of=targets_of,
        )

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
            http, entity_type=entity_type, payload=payload, idempotency_key=idempotency_key, context=context
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
        self.client.update(
            http, entity_type=entity_type, external_id=external_id, payload=payload, context=context
        )

    def delete(
        self, http: RecordedHttp, *, entity_type: str, external_id: str, context: PushContext | None = None
    ) -> None:
        self.client.delete(http, entity_type=entity_type, external_id=external_id, context=context)

    def read_back(
        self, http: RecordedHttp, links: list[tuple[str, str, dict[str, Any]]]
    ) -> list[dict[str, dict[str, Any]] | ExternalError]:
        return drift_read(self.client, http, links)
