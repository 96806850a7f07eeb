"""pretix: Wix events, ticket definitions and policies as pretix events, items and confirm texts.

What maps to what (the default field mappings are in ``PRETIX_DEFAULT_MAPPINGS``; staff change
them in the admin, and the payload keys are pretix's own API fields):

- a Wix event → a pretix event; the adapter always adds ``meta_data.wix_event_id``.
- a ticket definition → an item, plus keys the adapter expands: ``variations[*]`` (one
  variation per pricing option, tagged with ``meta_data.wix_option_id``), ``guest_price`` (a
  free-price item whose ``default_price`` is the minimum) and ``quota.size`` (a quota of the
  item; absent means unlimited). The item gets ``meta_data.wix_ticket_definition_id``.
- a policy → one entry of the event's ``confirm_texts``. pretix keeps a plain list, so every
  policy push sends the whole list, rebuilt in Wix order from the event's live policies.

Links: an event's external id is its slug; a ticket definition's is ``slug/item/quota``; a
policy's is ``slug/confirm_texts/<wix id>``. pretix has no Idempotency-Key, so a create first
looks for the record by the Wix id in its meta data: a retry after a worker died between
the create and the link adopts the record instead of making a second one.

pretix answers 403, not 404, for an event that does not exist (its permission check runs
first), so a 403 is read as "gone" only after the event is looked up by its Wix id at
organizer level. A record deleted by hand is recreated, and the push records the new id with
a LinkRepair row saying why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from portal.secrets import secret_read
from sync.clients.base import ExternalError, PayloadOf, PushContext, RecordedHttp
from sync.models import EntityType, Event, ExternalLink, ExternalSystem, MirrorModel, Policy, TicketDefinition
from sync.services.mapping import MappingRow

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


@dataclass(frozen=True)
class ItemRef:
    slug: str
    item_id: int
    quota_id: int

    @classmethod
    def parse(cls, external_id: str) -> ItemRef:
        try:
            slug, item_id, quota_id = external_id.rsplit("/", 2)
            return cls(slug, int(item_id), int(quota_id))
        except ValueError:
            raise ExternalError(
                f"{external_id!r} is not a pretix item link (event-slug/item-id/quota-id)", permanent=True
            ) from None

    def __str__(self) -> str:
        return f"{self.slug}/{self.item_id}/{self.quota_id}"


class PretixAdapter:
    def __init__(self, system: ExternalSystem) -> None:
        self.system = system
        self.root = f"{system.base_url.rstrip('/')}/api/v1/organizers/{system.organizer}"
        self._meta_declared = False

    # --- database phase ---------------------------------------------------------------
    def handles(self, entity_type: str) -> bool:
        return entity_type in (EntityType.EVENT, EntityType.TICKET_DEFINITION, EntityType.POLICY)

    def plan(
        self,
        *,
        entity_type: str,
        action: str,
        mirror: MirrorModel,
        payload: dict[str, Any] | None,
        link: ExternalLink | None,
        payload_of: PayloadOf,
        targets: set[str],
    ) -> tuple[dict[str, Any] | None, PushContext]:
        context = PushContext(facts={"wix_id": mirror.wix_id})
        if entity_type == EntityType.EVENT:
            assert isinstance(mirror, Event)
            return (self._event_payload(mirror, payload, targets) if payload is not None else None), context
        event_wix_id = mirror.raw.get("eventId") or getattr(mirror, "event_wix_id", "")
        context.facts["event"] = self._event_facts(mirror.site_id, event_wix_id, payload_of)
        if entity_type == EntityType.POLICY:
            texts = self._policy_plan(mirror, event_wix_id, payload_of, context)
            context.facts["confirm_texts"] = texts  # a delete sends the list without it
            return texts, context
        if payload is None:
            return None, context
        return self._item_payload(mirror, payload, targets), context

    def _event_payload(
        self, event: Event, payload: dict[str, Any], targets: set[str] | None = None
    ) -> dict[str, Any]:
        body = {key: None for key in NULLABLE[EntityType.EVENT] & (targets or set())}
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

    def _event_facts(self, site_id: int, event_wix_id: str, payload_of: PayloadOf) -> dict[str, Any]:
        link = ExternalLink.objects.filter(
            system=self.system, entity_type=EntityType.EVENT, wix_id=event_wix_id
        ).first()
        facts: dict[str, Any] = {"wix_id": event_wix_id}
        if link is not None and link.deleted_at is None:
            facts["slug"] = link.external_id
        event = Event.objects.filter(site_id=site_id, wix_id=event_wix_id).first()
        if event is not None and not event.is_deleted:
            # Also when linked: needed to rebuild the event if it was deleted in pretix.
            facts["payload"] = self._event_payload(event, payload_of(EntityType.EVENT, event))
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
        body = {key: None for key in NULLABLE[EntityType.TICKET_DEFINITION] & targets}
        body.update(payload)
        body.setdefault("active", True)
        body["meta_data"] = {**(body.get("meta_data") or {}), ITEM_META: td.wix_id}
        options = ((td.raw.get("pricingMethod") or {}).get("pricingOptions") or {}).get("optionDetails") or []
        variations = [v for v in body.get("variations") or [] if isinstance(v, dict)]
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
        quota = body.get("quota") if isinstance(body.get("quota"), dict) else {}
        body["quota"] = {"name": quota.get("name") or _first_text(body.get("name")) or td.wix_id, **quota}
        body["quota"].setdefault("size", None)  # no Wix limit: unlimited
        return body

    # --- HTTP helpers -----------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {
            "Accept": "application/json",
            "Authorization": f"Token {secret_read(self.system.auth_secret_env)}",
        }

    def _call(
        self,
        http: RecordedHttp,
        action: str,
        method: str,
        path: str,
        body: Any = None,
        allow: tuple[int, ...] = (),
    ) -> Any:
        response = http.request(
            action, method, f"{self.root}/{path}", json_body=body, headers=self._headers(), allow=allow
        )
        if response.status_code in allow or response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ExternalError(
                f"pretix answered {response.status_code} with a body that is not JSON", permanent=False
            ) from None

    def _list(self, http: RecordedHttp, action: str, path: str) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        page = 1
        while True:
            separator = "&" if "?" in path else "?"
            body = self._call(http, action, "GET", f"{path}{separator}page={page}")
            results.extend(body.get("results") or [])
            if not body.get("next"):
                return results
            page += 1

    # --- events -----------------------------------------------------------------------
    def _meta_declare(self, http: RecordedHttp, action: str) -> None:
        """Event meta data keys must be declared on the organizer first (once per adapter)."""
        if self._meta_declared:
            return
        names = {p.get("name") for p in self._list(http, action, "event_meta_properties/")}
        if EVENT_META not in names:
            body = {"name": EVENT_META, "default": "", "required": False, "choices": None}
            # pretix answers 500 (an integrity error) when a racing worker declared it first.
            response = self._call(http, action, "POST", "event_meta_properties/", body, allow=(500,))
            if response is None and EVENT_META not in {
                p.get("name") for p in self._list(http, action, "event_meta_properties/")
            }:
                raise ExternalError(
                    f"pretix refused to declare the event property {EVENT_META}", permanent=False
                )
            http.note(f"Declared the organizer's event property {EVENT_META}.")
        self._meta_declared = True

    def _event_find(self, http: RecordedHttp, action: str, wix_id: str) -> dict[str, Any] | None:
        self._meta_declare(http, action)
        for event in self._list(http, action, f"events/?attr[{EVENT_META}]={quote(wix_id)}"):
            if (event.get("meta_data") or {}).get(EVENT_META) == wix_id:
                return event
        return None

    def _event_create(self, http: RecordedHttp, action: str, wix_id: str, payload: dict[str, Any]) -> str:
        """Find the event by its Wix id (adopting it) or create it; then declare the item properties."""
        event = self._event_find(http, action, wix_id)
        if event is None:
            try:
                event = self._call(http, action, "POST", "events/", payload)
            except ExternalError as exc:
                event = self._event_find(http, action, wix_id) if exc.http_status == 400 else None
                if event is None:
                    raise
                http.note("Created by a concurrent push a moment ago: adopted.")
        else:
            http.note(f"pretix already has an event for Wix event {wix_id}: adopted, not created again.")
            self._call(http, action, "PATCH", f"events/{event['slug']}/", _without(payload, "slug"))
        properties = event.get("item_meta_properties") or {}
        if not {ITEM_META, OPTION_META} <= properties.keys():
            merged = {**properties, ITEM_META: "", OPTION_META: ""}
            self._call(http, action, "PATCH", f"events/{event['slug']}/", {"item_meta_properties": merged})
        return str(event["slug"])

    def _event_slug(self, http: RecordedHttp, action: str, context: PushContext) -> str:
        facts = context.facts["event"]
        if facts.get("slug"):
            return str(facts["slug"])
        slug = self._event_create(http, action, facts["wix_id"], facts["payload"])
        context.learn(EntityType.EVENT, facts["wix_id"], slug)
        facts["slug"] = slug
        return slug

    def _event_recreate(
        self, http: RecordedHttp, action: str, context: PushContext, exc: ExternalError
    ) -> str:
        """After a 403/404 inside an event: recreate the event if it is really gone, else re-raise."""
        facts = context.facts["event"]
        if exc.http_status not in (403, 404) or self._event_find(http, action, facts["wix_id"]) is not None:
            raise exc
        if "payload" not in facts:
            raise ExternalError(
                f"pretix event {facts.get('slug')} is gone and its Wix event is deleted", permanent=True
            )
        old = facts.get("slug")
        slug = self._event_create(http, action, facts["wix_id"], facts["payload"])
        reason = (
            f"pretix event {old} was deleted in pretix (403/404, and no event has "
            f"{EVENT_META}={facts['wix_id']}); recreated as {slug}"
        )
        http.note(reason)
        context.learn(EntityType.EVENT, facts["wix_id"], slug, reason)
        facts["slug"] = slug
        return slug

    # --- items (ticket definitions) ----------------------------------------------------
    def _item_find(self, http: RecordedHttp, action: str, slug: str, wix_id: str) -> dict[str, Any] | None:
        for item in self._list(http, action, f"events/{slug}/items/"):
            if (item.get("meta_data") or {}).get(ITEM_META) == wix_id:
                return item
        return None

    def _quota_for(self, http: RecordedHttp, action: str, slug: str, item_id: int) -> dict[str, Any] | None:
        for quota in self._list(http, action, f"events/{slug}/quotas/"):
            if quota.get("items") == [item_id]:
                return quota
        return None

    def _quota_body(self, payload: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        return {
            **payload["quota"],
            "items": [item["id"]],
            "variations": [v["id"] for v in item.get("variations") or []],
        }

    def _item_create(self, http: RecordedHttp, action: str, slug: str, payload: dict[str, Any]) -> ItemRef:
        """Create the item and its quota, or adopt what an interrupted earlier push made."""
        wix_id = payload["meta_data"][ITEM_META]
        item = self._item_find(http, action, slug, wix_id)
        if item is None:
            item = self._call(http, action, "POST", f"events/{slug}/items/", _without(payload, "quota"))
        else:
            http.note(f"pretix already has item {item['id']} for this ticket definition: adopted.")
            item = self._item_patch(http, action, slug, item, payload)
        quota = self._quota_for(http, action, slug, item["id"])
        if quota is None:
            quota = self._call(
                http, action, "POST", f"events/{slug}/quotas/", self._quota_body(payload, item)
            )
        else:
            self._call(
                http, action, "PATCH", f"events/{slug}/quotas/{quota['id']}/", self._quota_body(payload, item)
            )
        return ItemRef(slug, int(item["id"]), int(quota["id"]))

    def _item_patch(
        self, http: RecordedHttp, action: str, slug: str, item: dict[str, Any], payload: dict[str, Any]
    ) -> dict[str, Any]:
        """PATCH the item's own fields, then bring its variations in line (pretix takes those apart)."""
        patched = self._call(
            http,
            action,
            "PATCH",
            f"events/{slug}/items/{item['id']}/",
            _without(payload, "quota", "variations"),
        )
        wanted = {v["meta_data"][OPTION_META]: v for v in payload.get("variations") or []}
        current = {(v.get("meta_data") or {}).get(OPTION_META): v for v in patched.get("variations") or []}
        base = f"events/{slug}/items/{item['id']}/variations/"
        for key, variation in wanted.items():
            if key in current:
                self._call(http, action, "PATCH", f"{base}{current[key]['id']}/", variation)
            else:
                self._call(http, action, "POST", base, variation)
        for key, variation in current.items():
            if key not in wanted:
                self._call(http, action, "DELETE", f"{base}{variation['id']}/", allow=(403, 404))
                if http.last is not None and http.last.http_status == 403 and variation.get("active"):
                    # Sold already (pretix keeps it): take it off sale instead.
                    self._call(http, action, "PATCH", f"{base}{variation['id']}/", {"active": False})
        if wanted.keys() != current.keys():
            patched = self._call(http, action, "GET", f"events/{slug}/items/{item['id']}/")
        return patched

    def _item_update(
        self, http: RecordedHttp, action: str, ref: ItemRef, payload: dict[str, Any], context: PushContext
    ) -> ItemRef:
        slug = ref.slug
        try:
            item = self._call(http, action, "GET", f"events/{slug}/items/{ref.item_id}/", allow=(404,))
        except ExternalError as exc:
            slug = self._event_recreate(http, action, context, exc)
            item = None
        if item is not None and bool(item.get("has_variations")) != bool(payload.get("variations")):
            # pretix cannot turn an item with variations into one without, or back.
            self._item_retire(http, action, slug, item)
            http.note(f"Pricing changed between one price and options: item {item['id']} retired.")
            item = None
        if item is None:
            new = self._item_create(http, action, slug, payload)
            reason = f"pretix item {ref} was gone or could not take the new pricing; recreated as {new}"
            http.note(reason)
            context.learn(EntityType.TICKET_DEFINITION, payload["meta_data"][ITEM_META], str(new), reason)
            return new
        item = self._item_patch(http, action, slug, item, payload)
        quota_path = f"events/{slug}/quotas/{ref.quota_id}/"
        if (
            self._call(http, action, "PATCH", quota_path, self._quota_body(payload, item), allow=(404,))
            is None
        ):
            quota = self._call(
                http, action, "POST", f"events/{slug}/quotas/", self._quota_body(payload, item)
            )
            new = ItemRef(slug, ref.item_id, int(quota["id"]))
            reason = (
                f"pretix quota {ref.quota_id} of item {ref.item_id} was gone; recreated as {new.quota_id}"
            )
            http.note(reason)
            context.learn(EntityType.TICKET_DEFINITION, payload["meta_data"][ITEM_META], str(new), reason)
            return new
        return ref

    def _item_retire(self, http: RecordedHttp, action: str, slug: str, item: dict[str, Any]) -> None:
        """Delete an item; one that was ordered cannot be, so it is taken off sale instead."""
        path = f"events/{slug}/items/{item['id']}/"
        self._call(http, action, "DELETE", path, allow=(403, 404))
        if http.last is not None and http.last.http_status == 403:
            http.note("pretix keeps ordered items: deactivated instead.")
            self._call(http, action, "PATCH", path, {"active": False})

    def _item_delete(self, http: RecordedHttp, action: str, ref: ItemRef) -> None:
        path = f"events/{ref.slug}/items/{ref.item_id}/"
        self._call(http, action, "DELETE", path, allow=(403, 404))
        status = http.last.http_status if http.last is not None else None
        if status == 404:
            http.note("Already gone in pretix.")
        elif status == 403:
            # A missing event answers 403 too; an ordered item must stay, off sale.
            if self._call(http, action, "GET", f"events/{ref.slug}/", allow=(403, 404)) is None:
                http.note("The pretix event is gone, and the item with it.")
                return
            http.note("pretix keeps ordered items: deactivated instead, its quota kept.")
            self._call(http, action, "PATCH", path, {"active": False})
            return
        self._call(http, action, "DELETE", f"events/{ref.slug}/quotas/{ref.quota_id}/", allow=(403, 404))

    # --- policies (the event's confirm texts) -----------------------------------------
    def _confirm_texts_put(
        self, http: RecordedHttp, action: str, payload: dict[str, Any] | None, context: PushContext
    ) -> str:
        body = {"confirm_texts": (payload or {}).get("confirm_texts", [])}
        slug = self._event_slug(http, action, context)
        try:
            self._call(http, action, "PATCH", f"events/{slug}/settings/", body)
        except ExternalError as exc:
            slug = self._event_recreate(http, action, context, exc)
            self._call(http, action, "PATCH", f"events/{slug}/settings/", body)
        return slug

    # --- the adapter interface --------------------------------------------------------
    def create(
        self,
        http: RecordedHttp,
        *,
        entity_type: str,
        payload: dict[str, Any],
        idempotency_key: str,
        context: PushContext | None = None,
    ) -> str:
        context = context or PushContext()
        if entity_type == EntityType.EVENT:
            return self._event_create(http, "create", payload["meta_data"][EVENT_META], payload)
        if entity_type == EntityType.POLICY:
            slug = self._confirm_texts_put(http, "create", payload, context)
            return f"{slug}/confirm_texts/{context.facts['wix_id']}"
        slug = self._event_slug(http, "create", context)
        try:
            return str(self._item_create(http, "create", slug, payload))
        except ExternalError as exc:
            slug = self._event_recreate(http, "create", context, exc)
            return str(self._item_create(http, "create", slug, payload))

    def update(
        self,
        http: RecordedHttp,
        *,
        entity_type: str,
        external_id: str,
        payload: dict[str, Any],
        context: PushContext | None = None,
    ) -> None:
        context = context or PushContext()
        if entity_type == EntityType.EVENT:
            self._event_update(http, external_id, payload, context)
        elif entity_type == EntityType.POLICY:
            self._confirm_texts_put(http, "update", payload, context)
        else:
            self._item_update(http, "update", ItemRef.parse(external_id), payload, context)

    def _event_update(
        self, http: RecordedHttp, slug: str, payload: dict[str, Any], context: PushContext
    ) -> None:
        wix_id = payload["meta_data"][EVENT_META]
        try:
            self._call(http, "update", "PATCH", f"events/{slug}/", _without(payload, "slug"))
        except ExternalError as exc:
            if exc.http_status not in (403, 404) or self._event_find(http, "update", wix_id) is not None:
                raise
            new = self._event_create(http, "update", wix_id, payload)
            reason = f"pretix event {slug} was deleted in pretix; recreated as {new}"
            http.note(reason)
            context.learn(EntityType.EVENT, wix_id, new, reason)

    def delete(
        self, http: RecordedHttp, *, entity_type: str, external_id: str, context: PushContext | None = None
    ) -> None:
        context = context or PushContext()
        if entity_type == EntityType.POLICY:
            try:
                self._confirm_texts_put(http, "delete", context.facts.get("confirm_texts"), context)
            except ExternalError as exc:
                if "payload" in context.facts.get("event", {}) or exc.http_status not in (403, 404):
                    raise
                http.note("The pretix event is gone, and its confirm texts with it.")
        elif entity_type == EntityType.TICKET_DEFINITION:
            self._item_delete(http, "delete", ItemRef.parse(external_id))
        else:
            self._event_delete(http, external_id)

    def _event_delete(self, http: RecordedHttp, slug: str) -> None:
        self._call(http, "delete", "DELETE", f"events/{slug}/", allow=(403, 404))
        if http.last is None or http.last.http_status not in (403, 404):
            return
        event = self._call(http, "delete", "GET", f"events/{slug}/", allow=(403, 404))
        if event is None:
            http.note("Already gone in pretix.")
            return
        http.note("pretix keeps events with orders: taken offline (live = false) instead.")
        self._call(http, "delete", "PATCH", f"events/{slug}/", {"live": False})


def _without(payload: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in keys}


# --- test connection ----------------------------------------------------------------------
@dataclass(frozen=True)
class ConnectionCheck:
    label: str
    ok: bool | None  # None: could not be checked yet
    detail: str


class _Discard:
    def finished(self, record: Any) -> None:
        pass


def pretix_connection_check(system: ExternalSystem) -> list[ConnectionCheck]:
    """Check the token, the organizer and each permission the sync needs, changing nothing.

    A permission is probed with an empty create (or settings change): pretix checks the
    permission first and answers 403 without it, and 400 (nothing made) with it.
    """
    adapter = PretixAdapter(system)
    http = RecordedHttp(_Discard(), timeout=system.timeout)
    checks: list[ConnectionCheck] = []

    def status(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = http.request(
            "check",
            method,
            f"{adapter.root}/{path}",
            json_body=body,
            headers=adapter._headers(),
            allow=tuple(range(300, 600)),
        )
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    try:
        code, _ = status("GET", "")
    except Exception as exc:  # no secret, no connection: say so, do not crash the admin
        return [ConnectionCheck("Reach pretix", False, str(exc))]
    if code == 401:
        return [ConnectionCheck("API token", False, "pretix rejected the token (401).")]
    if code != 200:
        return [
            ConnectionCheck("Organizer", False, f"No access to organizer {system.organizer!r} (HTTP {code}).")
        ]
    checks.append(ConnectionCheck("API token and organizer", True, f"Organizer {system.organizer!r}."))
    probes = [
        ("Create events", "POST", "events/", {}),
        ("Declare event properties (organizer settings)", "POST", "event_meta_properties/", {}),
    ]
    for label, method, path, body in probes:
        code, _ = status(method, path, body)
        checks.append(ConnectionCheck(label, code != 403, "granted" if code != 403 else "missing (403)"))
    code, body = status("GET", "event_meta_properties/")
    names = {p.get("name") for p in (body or {}).get("results") or []} if code == 200 else set()
    checks.append(
        ConnectionCheck(
            f"Event property {EVENT_META}",
            True if EVENT_META in names else None,
            "declared" if EVENT_META in names else "not declared yet: the first push declares it",
        )
    )
    code, body = status("GET", "events/")
    slug = next((e.get("slug") for e in (body or {}).get("results") or []), None) if code == 200 else None
    if slug is None:
        checks.append(ConnectionCheck("Event permissions", None, "checked once pretix has an event"))
        return checks
    for label, method, path, probe in [
        ("Change items and quotas", "POST", f"events/{slug}/items/", {}),
        ("Change event settings (confirm texts)", "PATCH", f"events/{slug}/settings/", {}),
    ]:
        code, _ = status(method, path, probe)
        checks.append(
            ConnectionCheck(
                label, code != 403, f"granted (checked on {slug})" if code != 403 else "missing (403)"
            )
        )
    return checks
