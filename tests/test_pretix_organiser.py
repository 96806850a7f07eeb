"""pretix as an organiser expects it (issue 9, point 5), with pretix's HTTP mocked (``responses``):
one currency per event, pretix's field limits, slugs other events have, read-back drift, and
two workers creating one event. test_pretix_e2e.py runs the same against a real pretix.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses

from sync.clients.base import ExternalError, RecordedHttp
from sync.clients.pretix.drift import diff
from sync.models import (
    EntityType,
    ExternalLink,
    ExternalSystem,
    LinkRepair,
    OutboundWork,
    ReconciliationRun,
    SyncLog,
)
from sync.services.adapters.pretix import PretixAdapter
from sync.services.mirrors import event_upsert_from_wix, ticket_definition_upsert_from_wix
from sync.services.pretix import SlugFixError, pretix_event_adopt, pretix_event_slug_use
from sync.services.push import push_drain, push_enqueue
from sync.services.reconcile import reconcile_site
from tests.conftest import wix_payload
from tests.test_pretix_adapter import API, EVENT, EVENT_ID, TD, Calls, _page

pytestmark = pytest.mark.django_db


@pytest.fixture
def system(monkeypatch: pytest.MonkeyPatch) -> ExternalSystem:
    from sync.services.pretix import pretix_system_ensure

    monkeypatch.setenv("EXTERNAL_PRETIX_TOKEN", "tok-pretix")
    return pretix_system_ensure(
        url="https://pretix.test", organizer="demo", token_env="EXTERNAL_PRETIX_TOKEN"
    )


def _body(call: Any) -> Any:
    return json.loads(call.request.body)


def _usd(td: dict[str, Any]) -> dict[str, Any]:
    return td | {
        "id": "td-usd",
        "name": "Dollar seat",
        "pricingMethod": {"fixedPrice": {"value": "5", "currency": "USD"}},
    }


def _pretix_event(slug: str = "spring-gala", currency: str = "EUR", **extra: Any) -> dict[str, Any]:
    return {
        "slug": slug,
        "currency": currency,
        "name": {"en": "Spring Gala"},
        "meta_data": {"wix_event_id": EVENT_ID},
        "item_meta_properties": {"wix_ticket_definition_id": "", "wix_option_id": ""},
        **extra,
    }


def _run() -> None:
    push_drain(budget_seconds=10)


# --- currency ----------------------------------------------------------------------------
@responses.activate
def test_an_events_currency_is_chosen_at_creation_and_never_sent_again(
    site: Any, system: ExternalSystem
) -> None:
    event_upsert_from_wix(site=site, data=EVENT)
    ticket_definition_upsert_from_wix(site=site, data=TD)  # EUR
    system.__class__.objects.filter(pk=system.pk).update(default_currency="GBP")
    responses.get(f"{API}/event_meta_properties/", json=_page({"name": "wix_event_id"}))
    responses.get(f"{API}/events/", json=_page())
    create = responses.post(f"{API}/events/", status=201, json=_pretix_event(item_meta_properties={}))
    responses.patch(f"{API}/events/spring-gala/", json=_pretix_event())
    push_enqueue(site=site, entity_type="event", wix_ids=[EVENT_ID], trigger="backfill")
    _run()
    assert _body(create.calls[0])["currency"] == "EUR"  # the tickets', not the system's default
    link = ExternalLink.objects.get(entity_type="event")
    assert link.external_facts == {"currency": "EUR"}

    # A dollar ticket appears, then the event's title changes: the update says nothing of currency.
    ticket_definition_upsert_from_wix(site=site, data=_usd(TD))
    event_upsert_from_wix(site=site, data=EVENT | {"title": "Spring Gala 2027", "revision": "99"})
    update = responses.patch(f"{API}/events/spring-gala/", json=_pretix_event())
    push_enqueue(site=site, entity_type="event", wix_ids=[EVENT_ID], trigger="webhook")
    _run()
    sent = _body(update.calls[-1])
    assert sent["name"] == {"en": "Spring Gala 2027"} and sent["meta_data"] == {"wix_event_id": EVENT_ID}
    assert "currency" not in sent and "has_subevents" not in sent and "slug" not in sent

    # The dollar ticket is a dead letter naming both currencies, and nothing was sent for it.
    calls = len(responses.calls)
    push_enqueue(site=site, entity_type="ticket_definition", wix_ids=["td-usd"], trigger="webhook")
    _run()
    dead = OutboundWork.objects.get(wix_id="td-usd")
    assert dead.status == "dead"
    assert "priced in USD" in dead.last_error and "spring-gala is in EUR" in dead.last_error
    assert len(responses.calls) == calls


@responses.activate
def test_a_link_older_than_the_currency_fact_reads_it_once_then_refuses_another_currency(
    site: Any, system: ExternalSystem
) -> None:
    event_upsert_from_wix(site=site, data=EVENT)
    ticket_definition_upsert_from_wix(site=site, data=_usd(TD))
    ExternalLink.objects.create(
        system=system, site=site, entity_type="event", wix_id=EVENT_ID, external_id="spring-gala"
    )
    read = responses.get(f"{API}/events/spring-gala/", json=_pretix_event(currency="EUR"))
    push_enqueue(site=site, entity_type="ticket_definition", wix_ids=["td-usd"], trigger="webhook")
    _run()
    dead = OutboundWork.objects.get(wix_id="td-usd")
    assert dead.status == "dead" and "USD" in dead.last_error and "EUR" in dead.last_error
    assert len(read.calls) == 1 and not [c for c in responses.calls if c.request.method != "GET"]


def test_a_ticket_priced_in_two_currencies_is_refused(site: Any, system: ExternalSystem) -> None:
    from sync.services.push import push_decide

    event_upsert_from_wix(site=site, data=EVENT)
    mixed = wix_payload("ticket_definitions__query_pricing_options")["ticketDefinitions"][0]
    mixed["pricingMethod"]["pricingOptions"]["optionDetails"][1]["price"]["currency"] = "USD"
    ticket_definition_upsert_from_wix(site=site, data=mixed)
    with pytest.raises(ExternalError, match=r"several currencies \(EUR, USD\)") as error:
        push_decide(system=system, site=site, entity_type=EntityType.TICKET_DEFINITION, wix_id=mixed["id"])
    assert error.value.permanent


# --- pretix's field limits ------------------------------------------------------------------
def test_names_are_cut_to_pretixs_limits_and_impossible_numbers_refused(
    site: Any, system: ExternalSystem
) -> None:
    from sync.services.push import push_decide

    event_upsert_from_wix(site=site, data=EVENT | {"title": "E" * 300, "location": {"name": "L" * 250}})
    seated = wix_payload("ticket_definitions__query_pricing_options")["ticketDefinitions"][0]
    seated["name"] = "N" * 400
    seated["pricingMethod"]["pricingOptions"]["optionDetails"][0]["name"] = "O" * 300
    ticket_definition_upsert_from_wix(site=site, data=seated)
    event = push_decide(system=system, site=site, entity_type=EntityType.EVENT, wix_id=EVENT_ID).payload
    assert len(event["name"]["en"]) == 200 and event["name"]["en"].endswith("…")
    assert len(event["location"]["en"]) == 200
    item = push_decide(
        system=system, site=site, entity_type=EntityType.TICKET_DEFINITION, wix_id=seated["id"]
    ).payload
    assert len(item["name"]["en"]) == 255 and len(item["quota"]["name"]) == 200
    assert len(item["variations"][0]["value"]["en"]) == 255
    assert item["variations"][1]["value"] == {"en": "Child"}  # short ones untouched

    ticket_definition_upsert_from_wix(site=site, data=TD)
    # Wix prices fit (the mirror holds 12 digits), but a staff mapping may not.
    system.mappings.filter(target_field="default_price").update(
        source_path="", transform="constant", argument='"100000000000.00"'
    )
    with pytest.raises(ExternalError, match=r"default_price 100000000000\.00 is outside") as error:
        push_decide(system=system, site=site, entity_type=EntityType.TICKET_DEFINITION, wix_id=TD["id"])
    assert error.value.permanent


@responses.activate
def test_a_refused_quota_takes_back_the_item_it_was_for(system: ExternalSystem) -> None:
    adapter = PretixAdapter(system)
    http = RecordedHttp(Calls(), timeout=5)
    responses.get(f"{API}/events/gala/items/", json=_page())
    responses.post(f"{API}/events/gala/items/", status=201, json={"id": 31, "variations": []})
    responses.post(
        f"{API}/events/gala/quotas/", status=400, json={"size": ["Ensure this value is greater than 0."]}
    )
    cleanup = responses.delete(f"{API}/events/gala/items/31/", status=204)
    payload = {
        "name": {"en": "GA"},
        "meta_data": {"wix_ticket_definition_id": "td"},
        "quota": {"name": "GA", "size": -1},
    }
    context_facts = {"event": {"wix_id": EVENT_ID, "slug": "gala"}}
    from sync.clients.base import PushContext

    with pytest.raises(ExternalError, match="greater than 0") as error:
        adapter.create(
            http,
            entity_type="ticket_definition",
            payload=payload,
            idempotency_key="k",
            context=PushContext(facts=context_facts),
        )
    assert error.value.permanent and len(cleanup.calls) == 1
    assert "deleted again" in (http.last.note if http.last else "")


# --- two workers creating one event -----------------------------------------------------------
@responses.activate
def test_pretixs_500_for_a_slug_a_concurrent_push_took_adopts_that_event(system: ExternalSystem) -> None:
    adapter = PretixAdapter(system)
    adapter.client._meta_declared = True
    http = RecordedHttp(Calls(), timeout=5)
    responses.get(f"{API}/events/", json=_page())
    responses.get(f"{API}/events/", json=_page(_pretix_event()))
    responses.post(f"{API}/events/", status=500, body="<h1>IntegrityError: UNIQUE constraint failed</h1>")
    payload = {"slug": "spring-gala", "meta_data": {"wix_event_id": EVENT_ID}}
    assert adapter.create(http, entity_type="event", payload=payload, idempotency_key="k") == "spring-gala"
    assert [c.request.method for c in responses.calls] == ["GET", "POST", "GET"]  # no retry, no second POST


# --- a slug another pretix event has ------------------------------------------------------------
def _slug_dead_letter(site: Any, system: ExternalSystem, owner: str = "") -> OutboundWork:
    event_upsert_from_wix(site=site, data=EVENT)
    ticket_definition_upsert_from_wix(site=site, data=TD)
    responses.get(f"{API}/event_meta_properties/", json=_page({"name": "wix_event_id"}))
    responses.get(f"{API}/events/", json=_page())
    responses.post(
        f"{API}/events/",
        status=400,
        json={"slug": ["This slug has already been used for a different event."]},
    )
    theirs = _pretix_event(
        currency="USD",
        name={"en": "Box office gala"},
        meta_data={"wix_event_id": owner},
        item_meta_properties={},
    )
    responses.get(f"{API}/events/spring-gala/", json=theirs)
    push_enqueue(site=site, entity_type="event", wix_ids=[EVENT_ID], trigger="backfill")
    push_enqueue(site=site, entity_type="ticket_definition", wix_ids=[TD["id"]], trigger="backfill")
    _run()
    work = OutboundWork.objects.get(entity_type="event")
    assert work.status == "dead"
    return work


@responses.activate
def test_a_slug_taken_by_an_event_the_portal_did_not_make_is_a_dead_letter_naming_it(
    site: Any, system: ExternalSystem
) -> None:
    work = _slug_dead_letter(site, system)
    assert (
        "'spring-gala'" in work.last_error and "'Box office gala' (not made by the portal)" in work.last_error
    )
    assert work.error_details["pretix_event"] == {
        "slug": "spring-gala",
        "name": "Box office gala",
        "wix_event_id": "",
    }
    ticket = OutboundWork.objects.get(entity_type="ticket_definition")
    assert ticket.status == "dead" and ticket.error_details["wix_event_id"] == EVENT_ID


@responses.activate
def test_staff_adopt_the_pretix_event_that_has_the_slug(
    site: Any, system: ExternalSystem, admin_user: Any
) -> None:
    work = _slug_dead_letter(site, system)
    tag = responses.patch(
        f"{API}/events/spring-gala/", json=_pretix_event(currency="USD", item_meta_properties={})
    )
    link = pretix_event_adopt(work=work, reason="The box office made it first.", user=admin_user)
    assert (link.external_id, link.external_facts) == ("spring-gala", {"currency": "USD"})
    assert _body(tag.calls[0]) == {"meta_data": {"wix_event_id": EVENT_ID}}
    assert _body(tag.calls[1]) == {
        "item_meta_properties": {"wix_ticket_definition_id": "", "wix_option_id": ""}
    }
    repair = LinkRepair.objects.get(link=link)
    assert (repair.old_external_id, repair.new_external_id, repair.user) == ("", "spring-gala", admin_user)
    assert "Adopted pretix event spring-gala ('Box office gala')" in repair.reason
    assert "The box office made it first." in repair.reason
    # The event and its ticket are queued again (the ticket is EUR, the adopted event USD: it
    # will say so); the calls made are on the dead letter's log.
    assert set(OutboundWork.objects.filter(status="pending").values_list("entity_type", flat=True)) == {
        "event",
        "ticket_definition",
    }
    assert SyncLog.objects.filter(work=work, note__contains="Adopted by staff").exists()
    with pytest.raises(SlugFixError):
        pretix_event_adopt(work=work, reason="", user=admin_user)  # no longer a dead letter


@responses.activate
def test_an_event_another_wix_event_owns_is_not_adopted(
    site: Any, system: ExternalSystem, admin_user: Any
) -> None:
    work = _slug_dead_letter(site, system, owner="other-wix-event")
    assert "made for Wix event other-wix-event" in work.last_error
    with pytest.raises(SlugFixError, match="already belongs to Wix event other-wix-event"):
        pretix_event_adopt(work=work, reason="", user=admin_user)
    assert not ExternalLink.objects.filter(entity_type="event").exists()


@responses.activate
def test_staff_choose_another_slug_and_the_event_is_made_with_it(
    site: Any, system: ExternalSystem, admin_user: Any
) -> None:
    work = _slug_dead_letter(site, system)
    with pytest.raises(SlugFixError, match="not a pretix slug"):
        pretix_event_slug_use(work=work, slug="-bad slug", reason="", user=admin_user)
    create = responses.post(
        f"{API}/events/", status=201, json=_pretix_event(slug="gala-2026", item_meta_properties={})
    )
    responses.patch(f"{API}/events/gala-2026/", json=_pretix_event(slug="gala-2026"))
    link = pretix_event_slug_use(work=work, slug="gala-2026", reason="", user=admin_user)
    assert _body(create.calls[0])["slug"] == "gala-2026" and _body(create.calls[0])["currency"] == "EUR"
    assert link.external_id == "gala-2026" and link.external_facts == {"currency": "EUR"}
    assert (
        "Staff chose slug gala-2026: spring-gala is used by another pretix event"
        in LinkRepair.objects.get().reason
    )


@responses.activate
def test_admin_offers_both_fixes_on_the_dead_letter_and_confirms_first(
    site: Any, system: ExternalSystem, admin_client: Any
) -> None:
    work = _slug_dead_letter(site, system)
    page = admin_client.get(f"/admin/sync/outboundwork/{work.pk}/change/").content.decode()
    assert "Adopt pretix event spring-gala…" in page and "Use another slug…" in page
    url = f"/admin/sync/outboundwork/{work.pk}/pretix-slug/"
    review = admin_client.post(url, {"slug": "gala-2026", "reason": "clash"})
    assert "Yes, use this slug" in review.content.decode()
    assert not ExternalLink.objects.exists()  # nothing changed before the confirmation
    responses.post(f"{API}/events/", status=201, json=_pretix_event(slug="gala-2026"))
    done = admin_client.post(url, {"slug": "gala-2026", "reason": "clash", "confirm": "yes"}, follow=True)
    assert "is linked to pretix event gala-2026" in done.content.decode()
    assert ExternalLink.objects.get(entity_type="event").external_id == "gala-2026"

    adopt = admin_client.get(f"/admin/sync/outboundwork/{work.pk}/pretix-adopt/", follow=True)
    assert "not dead for a pretix slug conflict" in adopt.content.decode()  # it was fixed


# --- drift ----------------------------------------------------------------------------------------
def test_diff_compares_what_was_pushed_as_pretix_means_it() -> None:
    pushed = {
        "name": {"en": "Gala"},
        "date_from": "2026-05-02T19:00:00Z",
        "default_price": "25.00",
        "description": None,
        "meta_data": {"wix_event_id": "e1"},
        "not_returned": 1,
    }
    found = {
        "name": {"en": "Gala", "de": "Gala (de)"},  # a language staff added is theirs
        "date_from": "2026-05-02T20:00:00+01:00",  # the same instant
        "default_price": "25.0",
        "description": {},
        "meta_data": {"wix_event_id": "e1", "staff_key": "x"},
    }
    assert diff(pushed, found) == {}
    found |= {"name": {"en": "Gala (sold out)"}, "default_price": "30.00"}
    assert diff(pushed, found) == {
        "name.en": {"pushed": "Gala", "found": "Gala (sold out)"},
        "default_price": {"pushed": "25.00", "found": "30.00"},
    }


def _linked(site: Any, system: ExternalSystem) -> tuple[ExternalLink, ExternalLink]:
    event_upsert_from_wix(site=site, data=EVENT)
    ticket_definition_upsert_from_wix(site=site, data=TD)
    event = ExternalLink.objects.create(
        system=system,
        site=site,
        entity_type="event",
        wix_id=EVENT_ID,
        external_id="gala",
        last_payload={
            "name": {"en": "Spring Gala"},
            "slug": "spring-gala",
            "meta_data": {"wix_event_id": EVENT_ID},
        },
        last_payload_hash="h1",
        external_facts={"currency": "EUR"},
    )
    item = ExternalLink.objects.create(
        system=system,
        site=site,
        entity_type="ticket_definition",
        wix_id=TD["id"],
        external_id="gala/31/7",
        last_payload={
            "name": {"en": "General Admission"},
            "default_price": "25.00",
            "quota": {"name": "GA", "size": 200},
        },
        last_payload_hash="h2",
    )
    return event, item


def _pretix_as_changed_by_hand() -> None:
    responses.get(
        f"{API}/events/gala/", json={"slug": "gala", "name": {"en": "Spring Gala"}, "meta_data": {}}
    )
    responses.get(
        f"{API}/events/gala/items/31/",
        json={"id": 31, "name": {"en": "GA (last few!)"}, "default_price": "25.00", "variations": []},
    )
    responses.get(f"{API}/events/gala/quotas/7/", json={"id": 7, "name": "GA", "size": 150})


class _Wix:
    def get_event(self, wix_id: str) -> dict[str, Any]:
        return EVENT

    def query_policies(self, event_id: str) -> list[dict[str, Any]]:
        return []

    def query_ticket_definitions(self, event_id: str) -> list[dict[str, Any]]:
        return [TD]


@responses.activate
def test_reconciliation_reports_fields_changed_by_hand_and_keeps_them(
    site: Any, system: ExternalSystem, monkeypatch: pytest.MonkeyPatch, admin_client: Any
) -> None:
    event, item = _linked(site, system)
    _pretix_as_changed_by_hand()
    monkeypatch.setattr("sync.services.reconcile.site_wix_client", lambda site, **options: _Wix())
    run = reconcile_site(site=site)
    assert run.status == ReconciliationRun.Status.SUCCEEDED, run.errors
    item.refresh_from_db()
    assert item.drift == {
        "name.en": {"pushed": "General Admission", "found": "GA (last few!)"},
        "quota.size": {"pushed": 200, "found": 150},
    }
    event.refresh_from_db()
    # Meta data pretix did not return is not "changed": only what it returns is compared.
    assert event.drift == {}
    assert run.drift == [
        {
            "system": "pretix",
            "entity_type": "ticket_definition",
            "wix_id": TD["id"],
            "external_id": "gala/31/7",
            "fields": ["name.en", "quota.size"],
            "action": "kept",
        }
    ]
    assert not OutboundWork.objects.exists()  # kept: nothing is pushed
    listing = admin_client.get("/admin/sync/externallink/?drift=yes").content.decode()
    assert "name.en, quota.size" in listing and "gala/31/7" in listing
    page = admin_client.get(f"/admin/sync/externallink/{item.pk}/change/").content.decode()
    assert "GA (last few!)" in page and "General Admission" in page


@responses.activate
def test_reconciliation_overwrites_hand_edits_when_the_system_says_so(
    site: Any, system: ExternalSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    ExternalSystem.objects.filter(pk=system.pk).update(drift_action="overwrite")
    _, item = _linked(site, system)
    _pretix_as_changed_by_hand()
    monkeypatch.setattr("sync.services.reconcile.site_wix_client", lambda site, **options: _Wix())
    run = reconcile_site(site=site)
    assert run.drift[0]["action"] == "overwritten"
    item.refresh_from_db()
    assert item.last_payload_hash == ""  # the next push sends the Wix values again
    work = OutboundWork.objects.get()
    assert (work.entity_type, work.wix_id, work.trigger) == ("ticket_definition", TD["id"], "reconcile")


def test_the_dry_run_of_an_event_create_shows_the_currency_only_a_create_sends(
    site: Any, system: ExternalSystem
) -> None:
    from sync.services.resync import EntityRef, resync_plan

    event_upsert_from_wix(site=site, data=EVENT)
    [row] = resync_plan(refs=[EntityRef(site, EntityType.EVENT, EVENT_ID)], systems=[system])
    assert row.action == "create" and row.payload is not None
    assert (row.payload["currency"], row.payload["has_subevents"]) == ("EUR", False)
