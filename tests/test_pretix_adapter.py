"""The pretix adapter call by call, with pretix's HTTP mocked at the boundary (``responses``).

Shapes follow ../shared/pretix/README.md and what the real pretix answered (the end-to-end
test, test_pretix_e2e.py, runs the same paths against it).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from sync.clients.base import CallList, ExternalError, PushContext, RecordedHttp
from sync.clients.pretix import pretix_slug
from sync.models import EntityType, ExternalLink, ExternalSystem, LinkRepair, OutboundWork, SyncLog
from sync.services.adapters.pretix import PretixAdapter
from sync.services.mirrors import (
    event_upsert_from_wix,
    policy_delete_from_wix,
    policy_upsert_from_wix,
    ticket_definition_upsert_from_wix,
)
from sync.services.pretix import pretix_connection_test, pretix_system_ensure
from sync.services.push import PushCache, push_decide, push_drain, push_enqueue, work_execute
from tests.admin_forms import change_form_data
from tests.conftest import wix_payload

pytestmark = pytest.mark.django_db
PRETIX = "https://pretix.test"
API = f"{PRETIX}/api/v1/organizers/demo"
EVENT = wix_payload("event__query")["events"][0]
TD = wix_payload("ticket_definition__fixed_price")["ticketDefinition"]
SEATED = wix_payload("ticket_definitions__query_pricing_options")["ticketDefinitions"][0]
POLICY = wix_payload("policy__get")["policy"]
EVENT_ID = EVENT["id"]


Calls = CallList  # every call's record, as a push's recorder would get them


@pytest.fixture
def system(monkeypatch: pytest.MonkeyPatch) -> ExternalSystem:
    monkeypatch.setenv("EXTERNAL_PRETIX_TOKEN", "tok-pretix")
    return pretix_system_ensure(url=PRETIX, organizer="demo", token_env="EXTERNAL_PRETIX_TOKEN")


@pytest.fixture
def adapter(system: ExternalSystem) -> PretixAdapter:
    adapter = PretixAdapter(system)
    adapter.client._meta_declared = True  # declared: tested on its own below
    return adapter


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def http(calls: Calls) -> RecordedHttp:
    return RecordedHttp(calls, timeout=5)


def _page(*results: dict[str, Any]) -> dict[str, Any]:
    return {"count": len(results), "next": None, "previous": None, "results": list(results)}


def _facts(slug: str | None = "spring-gala", **extra: Any) -> PushContext:
    event: dict[str, Any] = {"wix_id": EVENT_ID, "payload": {"slug": "spring-gala", "name": {"en": "Gala"}}}
    if slug:
        event["slug"] = slug
    return PushContext(facts={"event": event, **extra})


def _item_payload(**overrides: Any) -> dict[str, Any]:
    return {
        "name": {"en": "GA"},
        "default_price": "25.00",
        "active": True,
        "meta_data": {"wix_ticket_definition_id": TD["id"]},
        "quota": {"name": "GA", "size": 200},
        **overrides,
    }


def _body(call: Any) -> Any:
    return json.loads(call.request.body)


# --- planning (database phase) ---------------------------------------------------------
def _mirror_all(site: Any) -> None:
    event_upsert_from_wix(site=site, data=EVENT)
    ticket_definition_upsert_from_wix(site=site, data=TD)
    ticket_definition_upsert_from_wix(site=site, data=SEATED)


def _decide(system: ExternalSystem, site: Any, entity_type: str, wix_id: str) -> Any:
    return push_decide(system=system, site=site, entity_type=entity_type, wix_id=wix_id, cache=PushCache())


def test_plan_turns_a_ticket_definition_into_an_item_with_quota_and_identity(
    site: Any, system: ExternalSystem
) -> None:
    _mirror_all(site)
    decision = _decide(system, site, EntityType.TICKET_DEFINITION, TD["id"])
    assert decision.action == "create"
    assert decision.payload == {
        "name": {"en": "General Admission"},
        "description": {"en": "Standing area, doors at 19:00."},
        "default_price": "25.00",
        "available_from": "2026-03-10T08:00:00Z",
        "available_until": "2026-05-01T18:00:00Z",
        "active": True,
        "admission": True,
        "free_price": False,
        "meta_data": {"wix_ticket_definition_id": TD["id"]},
        "quota": {"name": "General Admission", "size": 200},
    }
    event = decision.context.facts["event"]
    assert "slug" not in event  # not linked yet: the push makes the event first
    assert event["payload"]["slug"] == "spring-gala" and "currency" not in event["payload"]
    assert event["create_only"] == {"currency": "EUR", "has_subevents": False}
    assert event["currency"] == decision.context.facts["currency"] == "EUR"
    assert event["payload"]["meta_data"] == {"wix_event_id": EVENT_ID}


def test_plan_makes_variations_from_pricing_options_and_a_free_price_from_a_guest_price(
    site: Any, system: ExternalSystem
) -> None:
    _mirror_all(site)
    seated = _decide(system, site, EntityType.TICKET_DEFINITION, SEATED["id"]).payload
    options = SEATED["pricingMethod"]["pricingOptions"]["optionDetails"]
    assert seated["variations"] == [
        {"value": {"en": "Adult"}, "default_price": "40.00", "position": 0,
         "meta_data": {"wix_option_id": options[0]["optionId"]}},
        {"value": {"en": "Child"}, "default_price": "20.00", "position": 1,
         "meta_data": {"wix_option_id": options[1]["optionId"]}},
    ]  # fmt: skip
    assert seated["default_price"] == "20.00"  # the lowest option price
    assert seated["quota"]["size"] is None  # no initialLimit: unlimited
    assert seated["description"] == {"en": "Choose adult or child price."}

    guest = copy.deepcopy(TD) | {
        "id": "guest-1",
        "hidden": True,
        "pricingMethod": {"guestPrice": {"value": "10"}},
    }
    del guest["salePeriod"], guest["description"]
    ticket_definition_upsert_from_wix(site=site, data=guest)
    payload = _decide(system, site, EntityType.TICKET_DEFINITION, "guest-1").payload
    assert (payload["free_price"], payload["default_price"], payload["active"]) == (True, "10.00", False)
    # Mapped fields Wix no longer has are cleared, not left as they were.
    assert payload["available_from"] is None and payload["description"] is None


def test_plan_builds_the_events_confirm_texts_in_wix_order_from_live_policies(
    site: Any, system: ExternalSystem
) -> None:
    _mirror_all(site)
    second = POLICY | {
        "id": "pol-2",
        "name": "Conduct",
        "body": "Be kind.",
        "createdDate": "2026-03-03T00:00:00Z",
    }
    first = POLICY | {
        "id": "pol-1",
        "name": "Refunds",
        "body": "None.",
        "createdDate": "2026-03-01T00:00:00Z",
    }
    for data in (second, first):
        policy_upsert_from_wix(site=site, data=data)
    decision = _decide(system, site, EntityType.POLICY, "pol-2")
    assert decision.payload == {
        "confirm_texts": [{"en": "**Refunds**\n\nNone."}, {"en": "**Conduct**\n\nBe kind."}]
    }
    assert decision.context.recheck == ["pol-1", "pol-2"]
    ExternalLink.objects.create(
        system=system,
        site=site,
        entity_type="policy",
        wix_id="pol-1",
        external_id="spring-gala/confirm_texts/pol-1",
    )
    policy_delete_from_wix(site=site, wix_id="pol-1")
    deletion = _decide(system, site, EntityType.POLICY, "pol-1")
    assert deletion.action == "delete"
    assert deletion.context.facts["confirm_texts"] == {"confirm_texts": [{"en": "**Conduct**\n\nBe kind."}]}


def test_plan_waits_for_an_unmirrored_event_and_refuses_a_deleted_one(
    site: Any, system: ExternalSystem
) -> None:
    ticket_definition_upsert_from_wix(site=site, data=TD)
    with pytest.raises(ExternalError, match="not mirrored yet") as waiting:
        _decide(system, site, EntityType.TICKET_DEFINITION, TD["id"])
    assert waiting.value.permanent is False
    event_upsert_from_wix(site=site, data=EVENT)
    from sync.services.mirrors import event_delete_from_wix

    event_delete_from_wix(site=site, wix_id=EVENT_ID)
    with pytest.raises(ExternalError, match="is deleted") as refused:
        _decide(system, site, EntityType.TICKET_DEFINITION, TD["id"])
    assert refused.value.permanent is True


def test_event_payload_gets_a_pretix_slug_and_the_currency_of_its_tickets(
    site: Any, system: ExternalSystem
) -> None:
    assert pretix_slug("Spring Gala_2026!!", "x") == "spring-gala-2026"
    assert pretix_slug("", "ABCDEF123456") == "wix-abcdef12"
    assert len(pretix_slug("a" * 80, "x")) == 50
    event_upsert_from_wix(site=site, data=EVENT | {"slug": "Ópera & Gala"})
    decision = _decide(system, site, EntityType.EVENT, EVENT_ID)
    assert decision.context.create_only["currency"] == "EUR"  # the system's default
    ticket_definition_upsert_from_wix(
        site=site, data=TD | {"pricingMethod": {"fixedPrice": {"value": "5", "currency": "USD"}}}
    )
    decision = _decide(system, site, EntityType.EVENT, EVENT_ID)
    payload = decision.payload
    assert decision.context.create_only == {"currency": "USD", "has_subevents": False}
    assert "currency" not in payload and "has_subevents" not in payload  # never in an update, nor its hash
    assert payload["slug"] == "pera-gala"
    assert payload["name"] == {"en": "Spring Gala"} and payload["date_from"] == "2026-05-02T19:00:00Z"


# --- events --------------------------------------------------------------------------------
@responses.activate
def test_event_create_declares_the_meta_property_then_creates_and_declares_item_properties(
    system: ExternalSystem, http: RecordedHttp
) -> None:
    adapter = PretixAdapter(system)
    responses.get(f"{API}/event_meta_properties/", json=_page())
    declare = responses.post(
        f"{API}/event_meta_properties/", status=201, json={"id": 1, "name": "wix_event_id"}
    )
    responses.get(f"{API}/events/", json=_page())
    create = responses.post(
        f"{API}/events/", status=201, json={"slug": "spring-gala", "item_meta_properties": {}}
    )
    declare_items = responses.patch(f"{API}/events/spring-gala/", json={"slug": "spring-gala"})
    payload = {"slug": "spring-gala", "name": {"en": "Gala"}, "meta_data": {"wix_event_id": EVENT_ID}}
    assert adapter.create(http, entity_type="event", payload=payload, idempotency_key="k") == "spring-gala"
    assert _body(declare.calls[0]) == {
        "name": "wix_event_id",
        "default": "",
        "required": False,
        "choices": None,
    }
    assert _body(create.calls[0]) == payload
    assert _body(declare_items.calls[0]) == {
        "item_meta_properties": {"wix_ticket_definition_id": "", "wix_option_id": ""}
    }
    assert create.calls[0].request.headers["Authorization"] == "Token tok-pretix"
    assert responses.calls[2].request.params == {"attr[wix_event_id]": EVENT_ID, "page": "1"}


@responses.activate
def test_event_create_adopts_the_event_an_interrupted_push_made(
    adapter: PretixAdapter, http: RecordedHttp, calls: Calls
) -> None:
    found = {"slug": "gala", "meta_data": {"wix_event_id": EVENT_ID}, "item_meta_properties": {
        "wix_ticket_definition_id": "", "wix_option_id": "", "staff_own": ""}}  # fmt: skip
    responses.get(f"{API}/events/", json=_page({"slug": "other", "meta_data": {}}, found))
    update = responses.patch(f"{API}/events/gala/", json=found)
    payload = {"slug": "spring-gala", "name": {"en": "Gala"}, "meta_data": {"wix_event_id": EVENT_ID}}
    assert adapter.create(http, entity_type="event", payload=payload, idempotency_key="k") == "gala"
    assert len(update.calls) == 1 and "slug" not in _body(update.calls[0])  # no POST, and no re-declaring
    assert "adopted" in calls.records[0].note  # said on the lookup that found it


@responses.activate
def test_event_create_race_adopts_and_a_taken_slug_is_a_permanent_error(
    adapter: PretixAdapter, http: RecordedHttp
) -> None:
    mine = {"slug": "spring-gala", "meta_data": {"wix_event_id": EVENT_ID}, "item_meta_properties": {
        "wix_ticket_definition_id": "", "wix_option_id": ""}}  # fmt: skip
    responses.get(f"{API}/events/", json=_page())
    responses.get(f"{API}/events/", json=_page(mine))
    taken = {"slug": ["This slug has already been used for a different event."]}
    responses.post(f"{API}/events/", status=400, json=taken)
    payload = {"slug": "spring-gala", "meta_data": {"wix_event_id": EVENT_ID}}
    assert adapter.create(http, entity_type="event", payload=payload, idempotency_key="k") == "spring-gala"

    # Not ours: the error names the slug and the event that has it, for staff to adopt or avoid.
    responses.replace(responses.GET, f"{API}/events/", json=_page())
    staff_event = {"slug": "spring-gala", "name": {"en": "Staff's gala"}, "meta_data": {"wix_event_id": ""}}
    responses.get(f"{API}/events/spring-gala/", json=staff_event)
    with pytest.raises(ExternalError) as error:
        adapter.create(http, entity_type="event", payload=payload, idempotency_key="k")
    assert error.value.permanent and error.value.http_status == 400
    assert str(error.value) == (
        "HTTP 400: pretix already has an event with slug 'spring-gala': \"Staff's gala\" (not made by "
        f"the portal). Adopt that event for Wix event {EVENT_ID}, or choose another slug, on this dead "
        "letter's page"
    )
    assert error.value.details == {
        "kind": "pretix_slug_taken",
        "slug": "spring-gala",
        "wix_event_id": EVENT_ID,
        "pretix_event": {"slug": "spring-gala", "name": "Staff's gala", "wix_event_id": ""},
    }


@responses.activate
def test_the_meta_property_declared_by_a_racing_worker_is_accepted(
    system: ExternalSystem, http: RecordedHttp
) -> None:
    adapter = PretixAdapter(system)
    responses.get(f"{API}/event_meta_properties/", json=_page())
    responses.get(f"{API}/event_meta_properties/", json=_page({"name": "wix_event_id"}))
    responses.post(f"{API}/event_meta_properties/", status=500, body="IntegrityError")
    responses.get(f"{API}/events/", json=_page())
    adapter.client._event_find(http, "create", EVENT_ID)
    adapter.client._event_find(http, "create", EVENT_ID)  # declared once per adapter
    assert [c.request.method for c in responses.calls] == ["GET", "POST", "GET", "GET", "GET"]


@responses.activate
def test_event_update_patches_without_the_slug_and_recreates_an_event_deleted_in_pretix(
    adapter: PretixAdapter, http: RecordedHttp
) -> None:
    payload = {"slug": "spring-gala", "name": {"en": "Gala!"}, "meta_data": {"wix_event_id": EVENT_ID}}
    update = responses.patch(f"{API}/events/spring-gala/", json={})
    adapter.update(http, entity_type="event", external_id="spring-gala", payload=payload)
    assert _body(update.calls[0]) == {"name": {"en": "Gala!"}, "meta_data": {"wix_event_id": EVENT_ID}}

    responses.replace(responses.PATCH, f"{API}/events/spring-gala/", status=403, json={"detail": "denied"})
    responses.get(f"{API}/events/", json=_page())
    responses.post(f"{API}/events/", status=201, json={"slug": "spring-gala-2", "item_meta_properties": {}})
    responses.patch(f"{API}/events/spring-gala-2/", json={})
    context = PushContext()
    adapter.update(http, entity_type="event", external_id="spring-gala", payload=payload, context=context)
    [learned] = context.learned
    assert (learned.entity_type, learned.external_id) == ("event", "spring-gala-2")
    assert "deleted in pretix" in learned.reason


@responses.activate
def test_a_403_on_an_existing_event_is_a_permission_error_not_a_deletion(
    adapter: PretixAdapter, http: RecordedHttp
) -> None:
    responses.patch(f"{API}/events/spring-gala/", status=403, json={"detail": "You do not have permission."})
    responses.get(
        f"{API}/events/", json=_page({"slug": "spring-gala", "meta_data": {"wix_event_id": EVENT_ID}})
    )
    payload = {"slug": "spring-gala", "meta_data": {"wix_event_id": EVENT_ID}}
    with pytest.raises(ExternalError) as error:
        adapter.update(http, entity_type="event", external_id="spring-gala", payload=payload)
    assert error.value.permanent and "permission" in str(error.value)


@responses.activate
def test_event_delete_deletes_or_takes_an_event_with_orders_offline(
    adapter: PretixAdapter, http: RecordedHttp
) -> None:
    responses.delete(f"{API}/events/a/", status=204)
    adapter.delete(http, entity_type="event", external_id="a")
    responses.delete(
        f"{API}/events/b/",
        status=403,
        json={"detail": "The event can not be deleted as it already contains orders."},
    )
    responses.get(f"{API}/events/b/", json={"slug": "b"})
    offline = responses.patch(f"{API}/events/b/", json={})
    adapter.delete(http, entity_type="event", external_id="b")
    assert _body(offline.calls[0]) == {"live": False}
    responses.delete(f"{API}/events/c/", status=403, json={"detail": "denied"})
    responses.get(f"{API}/events/c/", status=403, json={"detail": "denied"})
    adapter.delete(http, entity_type="event", external_id="c")  # already gone
    assert http.last.note == "Already gone in pretix."  # type: ignore[union-attr]


# --- items -----------------------------------------------------------------------------------
@responses.activate
def test_ticket_create_makes_item_and_quota_and_links_both_ids(
    adapter: PretixAdapter, http: RecordedHttp
) -> None:
    responses.get(f"{API}/events/spring-gala/items/", json=_page())
    item = responses.post(f"{API}/events/spring-gala/items/", status=201, json={"id": 31, "variations": []})
    responses.get(f"{API}/events/spring-gala/quotas/", json=_page())
    quota = responses.post(f"{API}/events/spring-gala/quotas/", status=201, json={"id": 7})
    external_id = adapter.create(
        http, entity_type="ticket_definition", payload=_item_payload(), idempotency_key="k", context=_facts()
    )
    assert external_id == "spring-gala/31/7"
    assert "quota" not in _body(item.calls[0])
    # A new item cannot have a quota yet: no look-up.
    assert [c.request.method for c in responses.calls] == ["GET", "POST", "POST"]
    assert _body(quota.calls[0]) == {"name": "GA", "size": 200, "items": [31], "variations": []}


@responses.activate
def test_ticket_create_first_makes_the_event_and_learns_its_link(
    adapter: PretixAdapter, http: RecordedHttp
) -> None:
    responses.get(f"{API}/events/", json=_page())
    responses.post(f"{API}/events/", status=201, json={"slug": "spring-gala", "item_meta_properties": {}})
    responses.patch(f"{API}/events/spring-gala/", json={})
    responses.get(f"{API}/events/spring-gala/items/", json=_page())
    responses.post(f"{API}/events/spring-gala/items/", status=201, json={"id": 31, "variations": []})
    responses.get(f"{API}/events/spring-gala/quotas/", json=_page())
    responses.post(f"{API}/events/spring-gala/quotas/", status=201, json={"id": 7})
    context = _facts(slug=None)
    adapter.create(
        http, entity_type="ticket_definition", payload=_item_payload(), idempotency_key="k", context=context
    )
    [learned] = context.learned
    assert (learned.entity_type, learned.wix_id, learned.external_id, learned.reason) == (
        "event", EVENT_ID, "spring-gala", ""
    )  # fmt: skip


@responses.activate
def test_ticket_create_adopts_the_item_and_quota_an_interrupted_push_made(
    adapter: PretixAdapter, http: RecordedHttp
) -> None:
    existing = {"id": 31, "meta_data": {"wix_ticket_definition_id": TD["id"]}, "variations": []}
    responses.get(f"{API}/events/spring-gala/items/", json=_page({"id": 30, "meta_data": {}}, existing))
    responses.patch(f"{API}/events/spring-gala/items/31/", json=existing)
    responses.get(
        f"{API}/events/spring-gala/quotas/", json=_page({"id": 6, "items": [30]}, {"id": 7, "items": [31]})
    )
    quota = responses.patch(f"{API}/events/spring-gala/quotas/7/", json={"id": 7})
    external_id = adapter.create(
        http, entity_type="ticket_definition", payload=_item_payload(), idempotency_key="k", context=_facts()
    )
    assert external_id == "spring-gala/31/7" and len(quota.calls) == 1
    assert not [c for c in responses.calls if c.request.method == "POST"]


@responses.activate
def test_ticket_update_patches_the_item_syncs_variations_and_resizes_the_quota(
    adapter: PretixAdapter, http: RecordedHttp
) -> None:
    def variation(vid: int, option: str, active: bool = True) -> dict[str, Any]:
        return {"id": vid, "active": active, "meta_data": {"wix_option_id": option}}

    current = {"id": 31, "has_variations": True, "variations": [variation(1, "adult"), variation(2, "child")]}
    item = responses.patch(f"{API}/events/spring-gala/items/31/", json=current)
    adult = responses.patch(f"{API}/events/spring-gala/items/31/variations/1/", json={})
    senior = responses.post(f"{API}/events/spring-gala/items/31/variations/", status=201, json={"id": 3})
    responses.delete(
        f"{API}/events/spring-gala/items/31/variations/2/",
        status=403,
        json={"detail": "This variation cannot be deleted because it has already been ordered"},
    )
    child_off = responses.patch(f"{API}/events/spring-gala/items/31/variations/2/", json={})
    quota = responses.patch(f"{API}/events/spring-gala/quotas/7/", json={})
    wanted = [
        {
            "value": {"en": "Adult"},
            "default_price": "45.00",
            "position": 0,
            "meta_data": {"wix_option_id": "adult"},
        },
        {
            "value": {"en": "Senior"},
            "default_price": "30.00",
            "position": 1,
            "meta_data": {"wix_option_id": "senior"},
        },
    ]
    context = _facts()
    adapter.update(
        http,
        entity_type="ticket_definition",
        external_id="spring-gala/31/7",
        payload=_item_payload(variations=wanted),
        context=context,
    )
    assert "variations" not in _body(item.calls[0]) and "quota" not in _body(item.calls[0])
    assert _body(adult.calls[0])["default_price"] == "45.00"
    assert _body(senior.calls[0])["value"] == {"en": "Senior"}
    assert _body(child_off.calls[0]) == {"active": False}
    # The sold variation stays in the quota, off sale.
    assert _body(quota.calls[0]) == {"name": "GA", "size": 200, "items": [31], "variations": [1, 3, 2]}
    assert context.learned == []  # ids unchanged
    assert [c.request.method for c in responses.calls].count("GET") == 0

    # Unchanged variations are not sent again.
    same = {"id": 31, "has_variations": True, "variations": [
        {"id": 1, "active": True, **wanted[0]}, {"id": 3, "active": True, **wanted[1]}]}  # fmt: skip
    responses.replace(responses.PATCH, f"{API}/events/spring-gala/items/31/", json=same)
    before = len(responses.calls)
    adapter.update(
        http,
        entity_type="ticket_definition",
        external_id="spring-gala/31/7",
        payload=_item_payload(variations=wanted),
        context=context,
    )
    assert [(c.request.method, c.request.url.split("/demo/")[1]) for c in responses.calls[before:]] == [
        ("PATCH", "events/spring-gala/items/31/"),
        ("PATCH", "events/spring-gala/quotas/7/"),
    ]


@responses.activate
def test_an_item_deleted_in_pretix_is_recreated_and_the_new_ids_learnt_with_a_reason(
    adapter: PretixAdapter, http: RecordedHttp
) -> None:
    responses.patch(
        f"{API}/events/spring-gala/items/31/", status=404, json={"detail": "No Item matches the given query."}
    )
    responses.get(f"{API}/events/spring-gala/items/", json=_page())
    responses.post(f"{API}/events/spring-gala/items/", status=201, json={"id": 40, "variations": []})
    responses.get(f"{API}/events/spring-gala/quotas/", json=_page())
    responses.post(f"{API}/events/spring-gala/quotas/", status=201, json={"id": 9})
    context = _facts()
    adapter.update(
        http,
        entity_type="ticket_definition",
        external_id="spring-gala/31/7",
        payload=_item_payload(),
        context=context,
    )
    [learned] = context.learned
    assert (learned.entity_type, learned.wix_id, learned.external_id) == (
        "ticket_definition",
        TD["id"],
        "spring-gala/40/9",
    )
    assert "spring-gala/31/7" in learned.reason and "recreated" in learned.reason


@responses.activate
def test_a_quota_deleted_in_pretix_is_recreated(adapter: PretixAdapter, http: RecordedHttp) -> None:
    current = {"id": 31, "has_variations": False, "variations": []}
    responses.patch(f"{API}/events/spring-gala/items/31/", json=current)
    responses.patch(f"{API}/events/spring-gala/quotas/7/", status=404, json={"detail": "Not found."})
    responses.post(f"{API}/events/spring-gala/quotas/", status=201, json={"id": 8})
    context = _facts()
    adapter.update(
        http,
        entity_type="ticket_definition",
        external_id="spring-gala/31/7",
        payload=_item_payload(),
        context=context,
    )
    assert context.learned[0].external_id == "spring-gala/31/8"


@responses.activate
def test_an_event_deleted_in_pretix_is_recreated_before_its_item(
    adapter: PretixAdapter, http: RecordedHttp
) -> None:
    responses.patch(f"{API}/events/spring-gala/items/31/", status=403, json={"detail": "denied"})
    responses.get(f"{API}/events/", json=_page())
    responses.post(f"{API}/events/", status=201, json={"slug": "spring-gala", "item_meta_properties": {}})
    responses.patch(f"{API}/events/spring-gala/", json={})
    responses.get(f"{API}/events/spring-gala/items/", json=_page())
    responses.post(f"{API}/events/spring-gala/items/", status=201, json={"id": 1, "variations": []})
    responses.get(f"{API}/events/spring-gala/quotas/", json=_page())
    responses.post(f"{API}/events/spring-gala/quotas/", status=201, json={"id": 1})
    context = _facts()
    adapter.update(
        http,
        entity_type="ticket_definition",
        external_id="spring-gala/31/7",
        payload=_item_payload(),
        context=context,
    )
    assert [(x.entity_type, x.external_id) for x in context.learned] == [
        ("event", "spring-gala"),
        ("ticket_definition", "spring-gala/1/1"),
    ]
    assert all(x.reason for x in context.learned)


@responses.activate
def test_pricing_that_pretix_cannot_convert_retires_the_item_and_makes_a_new_one(
    adapter: PretixAdapter, http: RecordedHttp
) -> None:
    responses.patch(
        f"{API}/events/spring-gala/items/31/", json={"id": 31, "has_variations": False, "variations": []}
    )
    retire = responses.delete(f"{API}/events/spring-gala/items/31/", status=204)
    responses.get(f"{API}/events/spring-gala/items/", json=_page())
    responses.post(f"{API}/events/spring-gala/items/", status=201, json={"id": 32, "variations": [{"id": 5}]})
    responses.get(f"{API}/events/spring-gala/quotas/", json=_page())
    responses.post(f"{API}/events/spring-gala/quotas/", status=201, json={"id": 8})
    context = _facts()
    options = [
        {"value": {"en": "A"}, "default_price": "1.00", "position": 0, "meta_data": {"wix_option_id": "a"}}
    ]
    adapter.update(
        http,
        entity_type="ticket_definition",
        external_id="spring-gala/31/7",
        payload=_item_payload(variations=options),
        context=context,
    )
    assert len(retire.calls) == 1 and context.learned[0].external_id == "spring-gala/32/8"


@responses.activate
def test_ticket_delete_removes_item_and_quota_but_keeps_an_ordered_item_off_sale(
    adapter: PretixAdapter, http: RecordedHttp
) -> None:
    responses.delete(f"{API}/events/e/items/1/", status=204)
    quota = responses.delete(f"{API}/events/e/quotas/2/", status=204)
    adapter.delete(http, entity_type="ticket_definition", external_id="e/1/2")
    assert len(quota.calls) == 1

    responses.delete(f"{API}/events/e/items/3/", status=403, json={"detail": "already been ordered"})
    responses.get(f"{API}/events/e/", json={"slug": "e"})
    off = responses.patch(f"{API}/events/e/items/3/", json={})
    kept = responses.delete(f"{API}/events/e/quotas/4/", status=204)
    adapter.delete(http, entity_type="ticket_definition", external_id="e/3/4")
    assert _body(off.calls[0]) == {"active": False} and not kept.calls

    responses.delete(f"{API}/events/e/items/5/", status=404, json={"detail": "Not found."})
    responses.delete(f"{API}/events/e/quotas/6/", status=404, json={"detail": "Not found."})
    adapter.delete(http, entity_type="ticket_definition", external_id="e/5/6")  # already gone: fine

    with pytest.raises(ExternalError, match="not a pretix item link"):
        adapter.delete(http, entity_type="ticket_definition", external_id="77")


# --- policies ------------------------------------------------------------------------------
@responses.activate
def test_policies_set_the_whole_confirm_texts_list(adapter: PretixAdapter, http: RecordedHttp) -> None:
    settings = responses.patch(f"{API}/events/spring-gala/settings/", json={})
    texts = {"confirm_texts": [{"en": "A"}, {"en": "B"}]}
    context = _facts(wix_id="pol-1")
    external_id = adapter.create(
        http, entity_type="policy", payload=texts, idempotency_key="k", context=context
    )
    assert external_id == "spring-gala/confirm_texts/pol-1"
    adapter.update(http, entity_type="policy", external_id=external_id, payload=texts, context=context)
    adapter.delete(
        http,
        entity_type="policy",
        external_id=external_id,
        context=_facts(confirm_texts={"confirm_texts": [{"en": "B"}]}),
    )
    assert [_body(c) for c in settings.calls] == [texts, texts, {"confirm_texts": [{"en": "B"}]}]


@responses.activate
def test_a_policy_of_a_deleted_event_is_deleted_quietly_when_pretix_dropped_the_event(
    adapter: PretixAdapter, http: RecordedHttp
) -> None:
    responses.patch(f"{API}/events/gala/settings/", status=403, json={"detail": "denied"})
    context = PushContext(facts={"event": {"wix_id": EVENT_ID, "slug": "gala"}, "confirm_texts": None})
    adapter.delete(http, entity_type="policy", external_id="gala/confirm_texts/pol-1", context=context)
    assert http.last is not None and "gone" in http.last.note
    assert len(responses.calls) == 1  # no look-up, no attempt to rebuild the event


# --- errors ----------------------------------------------------------------------------------
@responses.activate
def test_pretix_errors_are_permanent_or_retryable_as_they_should_be(
    adapter: PretixAdapter, http: RecordedHttp, calls: Calls
) -> None:
    url = f"{API}/events/spring-gala/settings/"
    responses.patch(url, status=400, json={"confirm_texts": ["Not a valid list."]})
    with pytest.raises(ExternalError) as invalid:
        adapter.update(
            http, entity_type="policy", external_id="x", payload={"confirm_texts": []}, context=_facts()
        )
    assert invalid.value.permanent and str(invalid.value) == "HTTP 400: confirm_texts: Not a valid list."
    responses.replace(responses.PATCH, url, status=503, body="maintenance")
    with pytest.raises(ExternalError) as down:
        adapter.update(
            http, entity_type="policy", external_id="x", payload={"confirm_texts": []}, context=_facts()
        )
    assert not down.value.permanent
    responses.replace(responses.PATCH, url, body=requests.ConnectionError("refused"))
    with pytest.raises(ExternalError) as unreachable:
        adapter.update(
            http, entity_type="policy", external_id="x", payload={"confirm_texts": []}, context=_facts()
        )
    assert not unreachable.value.permanent and unreachable.value.http_status is None
    assert [r.permanent for r in calls.records] == [True, False, False]
    assert all("tok-pretix" not in r.request for r in calls.records)  # the token is never logged


# --- through the push path -----------------------------------------------------------------
@responses.activate
def test_through_the_push_path_a_validation_error_is_a_dead_letter_and_an_outage_a_retry(
    site: Any, system: ExternalSystem
) -> None:
    _mirror_all(site)
    ExternalLink.objects.create(
        system=system,
        site=site,
        entity_type="event",
        wix_id=EVENT_ID,
        external_id="gala",
        external_facts={"currency": "EUR"},
    )
    responses.get(f"{API}/events/gala/items/", json=_page())
    responses.post(
        f"{API}/events/gala/items/",
        status=400,
        json={"default_price": ["A valid number is required."]},
        match=[matchers.json_params_matcher({"name": {"en": "General Admission"}}, strict_match=False)],
    )
    responses.post(f"{API}/events/gala/items/", status=502, body="Bad gateway")
    push_enqueue(
        site=site, entity_type="ticket_definition", wix_ids=[TD["id"], SEATED["id"]], trigger="webhook"
    )
    push_drain(budget_seconds=10)
    dead = OutboundWork.objects.get(wix_id=TD["id"])
    assert dead.status == "dead" and dead.last_error == "HTTP 400: default_price: A valid number is required."
    waiting = OutboundWork.objects.get(wix_id=SEATED["id"])
    assert (waiting.status, waiting.attempts) == ("pending", 1) and waiting.not_before is not None
    assert SyncLog.objects.filter(status="permanent").count() == 1
    assert SyncLog.objects.filter(status="retryable").count() == 1


@responses.activate
def test_through_the_push_path_a_recreated_item_replaces_its_link_with_an_audit_row(
    site: Any, system: ExternalSystem
) -> None:
    _mirror_all(site)
    ExternalLink.objects.create(
        system=system,
        site=site,
        entity_type="event",
        wix_id=EVENT_ID,
        external_id="gala",
        external_facts={"currency": "EUR"},
    )
    link = ExternalLink.objects.create(
        system=system, site=site, entity_type="ticket_definition", wix_id=TD["id"], external_id="gala/31/7"
    )
    responses.patch(f"{API}/events/gala/items/31/", status=404, json={"detail": "Not found."})
    responses.get(f"{API}/events/gala/items/", json=_page())
    responses.post(f"{API}/events/gala/items/", status=201, json={"id": 40, "variations": []})
    responses.get(f"{API}/events/gala/quotas/", json=_page())
    responses.post(f"{API}/events/gala/quotas/", status=201, json={"id": 9})
    push_enqueue(site=site, entity_type="ticket_definition", wix_ids=[TD["id"]], trigger="resync")
    push_drain(budget_seconds=10)
    work = OutboundWork.objects.get()
    assert (work.status, work.outcome) == ("done", "recreated")
    link.refresh_from_db()
    assert link.external_id == "gala/40/9" and link.last_payload_hash
    repair = LinkRepair.objects.get()
    assert (repair.old_external_id, repair.new_external_id, repair.user) == ("gala/31/7", "gala/40/9", None)
    assert SyncLog.objects.filter(note__contains="recreated as gala/40/9").exists()


def test_generic_systems_are_not_sent_events_unless_they_describe_an_endpoint(site: Any) -> None:
    generic = ExternalSystem.objects.create(name="Generic", base_url="https://t.test", auth_type="none")
    event_upsert_from_wix(site=site, data=EVENT)
    assert push_enqueue(site=site, entity_type="event", wix_ids=[EVENT_ID], trigger="resync") == 0
    generic.endpoints.create(
        entity_type="event", create_path="e", update_path="e/{external_id}", delete_path="e"
    )
    assert push_enqueue(site=site, entity_type="event", wix_ids=[EVENT_ID], trigger="resync") == 1


# --- test connection ---------------------------------------------------------------------------
@responses.activate
def test_connection_check_reports_each_permission(system: ExternalSystem) -> None:
    responses.get(f"{API}/", json={"slug": "demo"})
    responses.post(f"{API}/events/", status=400, json={"name": ["This field is required."]})
    responses.post(f"{API}/event_meta_properties/", status=403, json={"detail": "denied"})
    responses.get(f"{API}/event_meta_properties/", json=_page())
    responses.get(f"{API}/events/", json=_page({"slug": "gala"}))
    responses.post(f"{API}/events/gala/items/", status=400, json={"name": ["This field is required."]})
    responses.patch(f"{API}/events/gala/settings/", status=403, json={"detail": "denied"})
    checks = {c.label: c.ok for c in pretix_connection_test(system)}
    assert checks == {
        "API token and organizer": True,
        "Create events": True,
        "Declare event properties (organizer settings)": False,
        "Event property wix_event_id": None,
        "Change items and quotas": True,
        "Change event settings (confirm texts)": False,
    }
    assert not [c for c in responses.calls if c.request.method == "POST" and c.response.status_code < 300]


@responses.activate
def test_connection_check_names_a_bad_token_a_wrong_organizer_and_no_server(
    system: ExternalSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    responses.get(f"{API}/", status=401, json={"detail": "Invalid token."})
    assert [(c.label, c.ok) for c in pretix_connection_test(system)] == [("API token", False)]
    responses.replace(responses.GET, f"{API}/", status=403, json={"detail": "denied"})
    [check] = pretix_connection_test(system)
    assert check.label == "Organizer" and "'demo'" in check.detail
    responses.replace(responses.GET, f"{API}/", body=requests.ConnectionError("refused"))
    assert pretix_connection_test(system)[0].ok is False
    monkeypatch.delenv("EXTERNAL_PRETIX_TOKEN")
    [missing] = pretix_connection_test(system)
    assert missing.ok is False and "EXTERNAL_PRETIX_TOKEN" in missing.detail


# --- admin ---------------------------------------------------------------------------------------
def _add_form(client: Any, **fields: str) -> Any:
    page = client.get("/admin/sync/externalsystem/add/")
    data = change_form_data(page)
    data.update({"name": "Box office", "kind": "pretix", "base_url": PRETIX, "timeout": "10", **fields})
    return client.post("/admin/sync/externalsystem/add/", data)


def test_admin_refuses_a_pretix_system_without_organizer_or_token(admin_client: Any) -> None:
    response = _add_form(admin_client, auth_type="bearer", default_currency="EUR")
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"organizer", "auth_type", "auth_secret_env"}
    assert not ExternalSystem.objects.exists()


def test_admin_gives_a_new_pretix_system_the_default_mappings(admin_client: Any) -> None:
    response = _add_form(
        admin_client,
        auth_type="token",
        auth_secret_env="EXTERNAL_PRETIX_TOKEN",
        organizer="demo",
        default_currency="EUR",
    )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    system = ExternalSystem.objects.get(name="Box office")
    assert set(system.mappings.values_list("entity_type", flat=True)) == {
        "event",
        "policy",
        "ticket_definition",
    }
    assert system.mappings.filter(entity_type="ticket_definition", target_field="quota.size").exists()
    page = admin_client.get(f"/admin/sync/externalsystem/{system.pk}/change/").content.decode()
    assert 'name="mappings-TOTAL_FORMS"' in page and 'name="endpoints-TOTAL_FORMS"' not in page


@responses.activate
def test_admin_test_connection_action_reports_what_is_missing(
    admin_client: Any, system: ExternalSystem
) -> None:
    responses.get(f"{API}/", json={"slug": "demo"})
    responses.post(f"{API}/events/", status=403, json={"detail": "denied"})
    responses.post(f"{API}/event_meta_properties/", status=400, json={})
    responses.get(f"{API}/event_meta_properties/", json=_page({"name": "wix_event_id"}))
    responses.get(f"{API}/events/", json=_page())
    response = admin_client.post(
        "/admin/sync/externalsystem/",
        {"action": "test_connection", "_selected_action": [system.pk]},
        follow=True,
    )
    shown = [(m.level_tag, str(m)) for m in response.context["messages"]]
    assert ("error", "pretix: Create events: missing (403)") in shown
    assert ("success", "pretix: Event property wix_event_id: declared") in shown
    assert ("warning", "pretix: Event permissions: checked once pretix has an event") in shown


def test_an_event_page_shows_its_timeline_with_pushes_to_pretix(
    admin_client: Any, site: Any, system: ExternalSystem
) -> None:
    from sync.models import Event

    event_upsert_from_wix(site=site, data=EVENT)
    work = OutboundWork.objects.create(
        system=system, site=site, entity_type="event", wix_id=EVENT_ID, trigger="backfill", status="done"
    )
    SyncLog.objects.create(
        work=work,
        system=system,
        entity_type="event",
        wix_id=EVENT_ID,
        trigger="backfill",
        action="create",
        status="success",
        http_status=201,
        duration_ms=80,
        note="Declared the organizer's event property wix_event_id.",
    )
    event = Event.objects.get()
    page = admin_client.get(f"/admin/sync/event/{event.pk}/change/").content.decode()
    assert "Create → pretix: 201 Success (80 ms)" in page
    assert "Declared the organizer&#x27;s event property wix_event_id." in page
    assert "Mirror created" in page


@responses.activate
def test_lists_are_read_page_by_page_and_a_non_json_answer_is_retried(
    adapter: PretixAdapter, http: RecordedHttp
) -> None:
    mine = {"id": 99, "meta_data": {"wix_ticket_definition_id": TD["id"]}, "variations": []}
    page_one = {**_page({"id": 1, "meta_data": {}}), "next": f"{API}/events/e/items/?page=2"}
    responses.get(
        f"{API}/events/e/items/", json=page_one, match=[matchers.query_param_matcher({"page": "1"})]
    )
    responses.get(
        f"{API}/events/e/items/", json=_page(mine), match=[matchers.query_param_matcher({"page": "2"})]
    )
    assert adapter.client._item_find(http, "create", "e", TD["id"]) == mine

    responses.patch(f"{API}/events/e/settings/", status=200, body="<html>proxy page</html>")
    with pytest.raises(ExternalError, match="not JSON") as error:
        adapter.update(
            http,
            entity_type="policy",
            external_id="x",
            payload={"confirm_texts": []},
            context=_facts(slug="e"),
        )
    assert error.value.permanent is False


@responses.activate
def test_a_policy_list_read_before_a_sibling_changed_is_sent_again(site: Any, system: ExternalSystem) -> None:
    """Two policies of one event pushed at once: the list sent first can be stale by the time
    pretix has it. The push reads the list again after recording itself and queues a resend."""
    _mirror_all(site)
    ExternalLink.objects.create(
        system=system,
        site=site,
        entity_type="event",
        wix_id=EVENT_ID,
        external_id="gala",
        external_facts={"currency": "EUR"},
    )
    first = POLICY | {
        "id": "pol-1",
        "name": "Refunds",
        "body": "None.",
        "createdDate": "2026-03-01T00:00:00Z",
    }
    second = POLICY | {
        "id": "pol-2",
        "name": "Conduct",
        "body": "Be kind.",
        "createdDate": "2026-03-02T00:00:00Z",
    }
    policy_upsert_from_wix(site=site, data=first)
    policy_upsert_from_wix(site=site, data=second)
    sent: list[list[str]] = []

    def settings_patch(request: Any) -> tuple[int, dict[str, str], str]:
        texts = [t["en"] for t in json.loads(request.body)["confirm_texts"]]
        sent.append(texts)
        if len(sent) == 1:
            # Meanwhile a webhook changes the sibling (committed before this answer returns).
            policy_upsert_from_wix(site=site, data=second | {"revision": "3", "body": "Be very kind."})
        return 200, {}, "{}"

    responses.add_callback(responses.PATCH, f"{API}/events/gala/settings/", callback=settings_patch)
    push_enqueue(site=site, entity_type="policy", wix_ids=["pol-1"], trigger="webhook")

    def run_pending() -> None:
        # One push at a time in this thread (the callback above writes to the test database).
        while (work := OutboundWork.objects.filter(status="pending").first()) is not None:
            work_execute(work_id=work.pk)

    run_pending()
    assert sent == [
        ["**Refunds**\n\nNone.", "**Conduct**\n\nBe kind."],  # stale by the time pretix stored it
        ["**Refunds**\n\nNone.", "**Conduct**\n\nBe very kind."],  # the recheck's resend
    ]
    resend = OutboundWork.objects.get(outcome="updated")
    assert (resend.wix_id, resend.trigger) == ("pol-1", "webhook")
    run_pending()
    assert len(sent) == 2  # now in line: nothing more is sent
    assert OutboundWork.objects.filter(status="done").count() == 2
