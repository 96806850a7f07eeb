"""pretix, sending phase: the HTTP calls that create, update and delete the records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from portal.secrets import secret_read
from sync.clients.base import ExternalError, PushContext, RecordedHttp
from sync.clients.pretix.protocol import EVENT_META, ITEM_META, OPTION_META, first_text
from sync.domain.entity_types import EntityType

SLUG_TAKEN = "pretix_slug_taken"  # ExternalError.details["kind"] of a create refused for its slug


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


@dataclass(frozen=True)
class PretixConfig:
    """Where a pretix organizer is, and the variable holding its API token."""

    base_url: str
    organizer: str
    token_env: str


class PretixClient:
    def __init__(self, config: PretixConfig) -> None:
        self.config = config
        self.root = f"{config.base_url.rstrip('/')}/api/v1/organizers/{config.organizer}"
        self._meta_declared = False

    # --- HTTP helpers -----------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        token = secret_read(self.config.token_env, prefix="EXTERNAL_")
        return {"Accept": "application/json", "Authorization": f"Token {token}"}

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

    def _event_create(
        self,
        http: RecordedHttp,
        action: str,
        wix_id: str,
        payload: dict[str, Any],
        create_only: dict[str, Any],
    ) -> dict[str, Any]:
        """Find the event by its Wix id (adopting it) or create it; then declare the item properties.

        Returns pretix's event (its currency is pretix's, whatever was asked for). ``create_only``
        (the currency) is sent with a POST only: an adopted event keeps its own.
        """
        event = self._event_find(http, action, wix_id)
        if event is None:
            try:
                event = self._call(http, action, "POST", "events/", {**payload, **create_only})
            except ExternalError as exc:
                # 400: the slug is taken; 500: the same, found by pretix's database (an
                # IntegrityError) when a concurrent push created it a moment before this one.
                if exc.http_status not in (400, 500):
                    raise
                event = self._event_find(http, action, wix_id)
                if event is None:
                    conflict = self._slug_conflict(http, action, wix_id, payload, exc)
                    if conflict is exc:
                        raise
                    raise conflict from exc
                http.note("Created by a concurrent push a moment ago: adopted.")
        else:
            http.note(f"pretix already has an event for Wix event {wix_id}: adopted, not created again.")
            event = (
                self._call(http, action, "PATCH", f"events/{event['slug']}/", _without(payload, "slug"))
                or event
            )
        self._item_properties_declare(http, action, event)
        return dict(event)

    def _item_properties_declare(self, http: RecordedHttp, action: str, event: dict[str, Any]) -> None:
        properties = event.get("item_meta_properties") or {}
        if not {ITEM_META, OPTION_META} <= properties.keys():
            merged = {**properties, ITEM_META: "", OPTION_META: ""}
            self._call(http, action, "PATCH", f"events/{event['slug']}/", {"item_meta_properties": merged})

    def _slug_conflict(
        self, http: RecordedHttp, action: str, wix_id: str, payload: dict[str, Any], exc: ExternalError
    ) -> ExternalError:
        """The error for a create refused because of its slug, naming the event that has it.

        Staff then adopt that event or choose another slug (both on the dead letter's page).
        """
        slug = str(payload.get("slug") or "")
        if exc.http_status != 400 or "slug" not in exc.message or not slug:
            return exc
        other = self._call(http, action, "GET", f"events/{quote(slug)}/", allow=(403, 404))
        details: dict[str, Any] = {"kind": SLUG_TAKEN, "slug": slug, "wix_event_id": wix_id}
        if other is None:
            # Refused for another reason (e.g. a reserved word): only another slug helps.
            return ExternalError(
                f"pretix refused the slug {slug!r} for Wix event {wix_id} ({exc.message}); "
                "choose another slug on this dead letter's page",
                permanent=True,
                http_status=400,
                details=details,
            )
        owner = (other.get("meta_data") or {}).get(EVENT_META) or ""
        name = first_text(other.get("name"))
        details["pretix_event"] = {"slug": slug, "name": name, "wix_event_id": owner}
        made_by = f"made for Wix event {owner}" if owner else "not made by the portal"
        return ExternalError(
            f"pretix already has an event with slug {slug!r}: {name!r} ({made_by}). "
            f"Adopt that event for Wix event {wix_id}, or choose another slug, on this dead letter's page",
            permanent=True,
            http_status=400,
            details=details,
        )

    def event_create(
        self, http: RecordedHttp, *, wix_id: str, payload: dict[str, Any], create_only: dict[str, Any]
    ) -> dict[str, Any]:
        """Outside the push path (staff chose the slug): find the event by its Wix id, or create it."""
        return self._event_create(http, "create", wix_id, payload, create_only)

    def event_adopt(self, http: RecordedHttp, *, slug: str, wix_id: str) -> dict[str, Any]:
        """Make a pretix event staff chose the Wix event's: tag it with the Wix id, declare the
        item properties. Refused if it already carries another Wix event's id."""
        self._meta_declare(http, "update")
        event = self._call(http, "update", "GET", f"events/{quote(slug)}/")
        meta = dict(event.get("meta_data") or {})
        owner = meta.get(EVENT_META)
        if owner and owner != wix_id:
            raise ExternalError(
                f"pretix event {slug} already belongs to Wix event {owner}: not adopted", permanent=True
            )
        if owner != wix_id:
            event = self._call(
                http, "update", "PATCH", f"events/{quote(slug)}/", {"meta_data": {**meta, EVENT_META: wix_id}}
            )
        http.note(f"Adopted by staff for Wix event {wix_id}.")
        self._item_properties_declare(http, "update", event)
        return dict(event)

    def _event_learn(self, context: PushContext, wix_id: str, event: dict[str, Any]) -> None:
        """Remember what pretix decided for the event, and check the ticket being pushed against it."""
        currency = event.get("currency")
        if not currency:
            return
        context.learn_facts(EntityType.EVENT, wix_id, currency=currency)
        facts = context.facts.get("event")
        if facts is not None and facts.get("wix_id") == wix_id:
            facts["currency"] = currency
            ticket = context.facts.get("currency")
            if ticket and ticket != str(currency).upper():
                raise ExternalError(
                    f"Ticket definition {context.facts.get('wix_id')} is priced in {ticket}, but pretix "
                    f"event {event.get('slug')} is in {currency}: pretix keeps one currency per event "
                    f"and the portal converts nothing. Price the ticket in {currency} on Wix.",
                    permanent=True,
                )

    def _event_slug(self, http: RecordedHttp, action: str, context: PushContext) -> str:
        facts = context.facts["event"]
        if facts.get("slug"):
            if context.facts.get("currency") and not facts.get("currency"):
                # A link made before the portal remembered currencies: read it once.
                event = self._call(http, action, "GET", f"events/{facts['slug']}/", allow=(403, 404))
                if event is not None:
                    self._event_learn(context, facts["wix_id"], event)
            return str(facts["slug"])
        event = self._event_create(
            http, action, facts["wix_id"], facts["payload"], facts.get("create_only") or {}
        )
        slug = str(event["slug"])
        context.learn(
            EntityType.EVENT,
            facts["wix_id"],
            slug,
            payload_hash=facts.get("payload_hash", ""),
            payload=facts.get("payload"),
        )
        facts["slug"] = slug
        self._event_learn(context, facts["wix_id"], event)
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
        event = self._event_create(
            http, action, facts["wix_id"], facts["payload"], facts.get("create_only") or {}
        )
        slug = str(event["slug"])
        reason = (
            f"pretix event {old} was deleted in pretix (403/404, and no event has "
            f"{EVENT_META}={facts['wix_id']}); recreated as {slug}"
        )
        http.note(reason)
        context.learn(EntityType.EVENT, facts["wix_id"], slug, reason)
        facts["slug"] = slug
        self._event_learn(context, facts["wix_id"], event)
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

    def _quota_body(self, payload: dict[str, Any], item_id: int, variation_ids: list[int]) -> dict[str, Any]:
        return {**payload["quota"], "items": [item_id], "variations": variation_ids}

    def _item_create(self, http: RecordedHttp, action: str, slug: str, payload: dict[str, Any]) -> ItemRef:
        """Create the item and its quota, or adopt what an interrupted earlier push made."""
        wix_id = payload["meta_data"][ITEM_META]
        item = self._item_find(http, action, slug, wix_id)
        adopted = item is not None
        if item is None:
            item = self._call(http, action, "POST", f"events/{slug}/items/", _without(payload, "quota"))
            variation_ids = [int(v["id"]) for v in item.get("variations") or []]
        else:
            http.note(f"pretix already has item {item['id']} for this ticket definition: adopted.")
            item = self._item_patch(http, action, slug, item["id"], payload)
            variation_ids = self._variations_sync(http, action, slug, item, payload)
        body = self._quota_body(payload, int(item["id"]), variation_ids)
        # Only an adopted item can already have a quota; a new one cannot.
        quota = self._quota_for(http, action, slug, item["id"]) if adopted else None
        if quota is None:
            try:
                quota = self._call(http, action, "POST", f"events/{slug}/quotas/", body)
            except ExternalError as exc:
                if not adopted and exc.permanent:
                    # pretix refused the quota: take back the item made a moment ago, so that no
                    # item without quota or link is left (a retry would adopt it otherwise).
                    self._call(http, action, "DELETE", f"events/{slug}/items/{item['id']}/", allow=(403, 404))
                    http.note(f"The quota was refused: item {item['id']} made by this push deleted again.")
                raise exc from None
        else:
            self._call(http, action, "PATCH", f"events/{slug}/quotas/{quota['id']}/", body)
        return ItemRef(slug, int(item["id"]), int(quota["id"]))

    def _item_patch(
        self,
        http: RecordedHttp,
        action: str,
        slug: str,
        item_id: int,
        payload: dict[str, Any],
        allow: tuple[int, ...] = (),
    ) -> Any:
        """PATCH the item's own fields (pretix takes variations apart); None if it is gone (404)."""
        path = f"events/{slug}/items/{item_id}/"
        return self._call(http, action, "PATCH", path, _without(payload, "quota", "variations"), allow=allow)

    def _variations_sync(
        self, http: RecordedHttp, action: str, slug: str, item: dict[str, Any], payload: dict[str, Any]
    ) -> list[int]:
        """Bring the variations in line with Wix's pricing options (matched by option id).

        Only what differs is sent. A variation pretix refuses to delete (it was sold) is taken
        off sale and stays in the quota. Returns the ids the item's quota should cover.
        """
        wanted = {v["meta_data"][OPTION_META]: v for v in payload.get("variations") or []}
        current = {(v.get("meta_data") or {}).get(OPTION_META): v for v in item.get("variations") or []}
        base = f"events/{slug}/items/{item['id']}/variations/"
        ids: list[int] = []
        for key, variation in wanted.items():
            have = current.get(key)
            if have is None:
                ids.append(int(self._call(http, action, "POST", base, variation)["id"]))
                continue
            if any(have.get(field) != value for field, value in variation.items() if field != "meta_data"):
                self._call(http, action, "PATCH", f"{base}{have['id']}/", variation)
            ids.append(int(have["id"]))
        for key, variation in current.items():
            if key in wanted:
                continue
            self._call(http, action, "DELETE", f"{base}{variation['id']}/", allow=(403, 404))
            if http.last is not None and http.last.http_status == 403:
                http.note("pretix keeps sold variations: taken off sale instead.")
                if variation.get("active"):
                    self._call(http, action, "PATCH", f"{base}{variation['id']}/", {"active": False})
                ids.append(int(variation["id"]))
        return ids

    def _item_update(
        self, http: RecordedHttp, action: str, ref: ItemRef, payload: dict[str, Any], context: PushContext
    ) -> ItemRef:
        slug = ref.slug
        try:
            item = self._item_patch(http, action, slug, ref.item_id, payload, allow=(404,))
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
        body = self._quota_body(
            payload, ref.item_id, self._variations_sync(http, action, slug, item, payload)
        )
        self._call(http, action, "PATCH", f"events/{slug}/quotas/{ref.quota_id}/", body, allow=(404,))
        if http.last is not None and http.last.http_status == 404:
            quota = self._call(http, action, "POST", f"events/{slug}/quotas/", body)
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
            wix_id = payload["meta_data"][EVENT_META]
            event = self._event_create(http, "create", wix_id, payload, context.create_only)
            self._event_learn(context, wix_id, event)
            return str(event["slug"])
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
            ref = ItemRef.parse(external_id)
            if context.facts.get("event", {}).get("slug") == ref.slug:
                self._event_slug(http, "update", context)  # checks the event's currency if not known yet
            self._item_update(http, "update", ref, payload, context)

    def _event_update(
        self, http: RecordedHttp, slug: str, payload: dict[str, Any], context: PushContext
    ) -> None:
        wix_id = payload["meta_data"][EVENT_META]
        context.facts["event"] = {
            "wix_id": wix_id,
            "slug": slug,
            "payload": payload,
            "create_only": context.create_only,
        }
        try:
            event = self._call(http, "update", "PATCH", f"events/{slug}/", _without(payload, "slug"))
        except ExternalError as exc:
            self._event_recreate(http, "update", context, exc)
            return
        if event:
            self._event_learn(context, wix_id, event)

    def delete(
        self, http: RecordedHttp, *, entity_type: str, external_id: str, context: PushContext | None = None
    ) -> None:
        context = context or PushContext()
        if entity_type == EntityType.POLICY:
            facts = context.facts["event"]
            if "payload" in facts:
                self._confirm_texts_put(http, "delete", context.facts.get("confirm_texts"), context)
                return
            # The Wix event is deleted too: nothing to rebuild if its pretix event is gone.
            body = context.facts.get("confirm_texts") or {"confirm_texts": []}
            path = f"events/{facts['slug']}/settings/"
            self._call(http, "delete", "PATCH", path, body, allow=(403, 404))
            if http.last is not None and http.last.http_status in (403, 404):
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
