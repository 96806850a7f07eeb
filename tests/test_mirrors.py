from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from sync.models import Event, Policy, TicketDefinition, WixSite
from sync.services.mirrors import (
    MirrorDataError,
    UpsertOutcome,
    event_upsert_from_wix,
    policy_delete_from_wix,
    policy_upsert_from_wix,
    ticket_definition_delete_from_wix,
    ticket_definition_upsert_from_wix,
)
from tests.conftest import wix_payload

pytestmark = pytest.mark.django_db


def _td(**changes: object) -> dict:
    data = copy.deepcopy(wix_payload("ticket_definition__fixed_price")["ticketDefinition"])
    data.update(changes)
    return data


def _policy(**changes: object) -> dict:
    data = copy.deepcopy(wix_payload("policy__get")["policy"])
    data.update(changes)
    return data


def test_a_fixed_price_definition_fills_the_columns_staff_filter_on(site: WixSite) -> None:
    event_upsert_from_wix(site=site, data=wix_payload("event__query")["events"][0])
    result = ticket_definition_upsert_from_wix(site=site, data=_td())
    td = TicketDefinition.objects.get(wix_id="b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e")
    assert result.outcome == UpsertOutcome.CREATED
    assert (td.revision, td.name, td.pricing_method, td.price, td.currency) == (
        4,
        "General Admission",
        "fixed",
        Decimal("25.00"),
        "EUR",
    )
    assert (td.unsold_count, td.sold_count, td.initial_limit, td.sale_status) == (
        143,
        55,
        200,
        "SALE_STARTED",
    )
    assert td.sale_start.isoformat() == "2026-03-10T08:00:00+00:00"
    assert td.event.title == "Spring Gala"
    assert td.raw == _td()


def test_pricing_options_take_the_lowest_price_and_keep_unlimited_as_empty(site: WixSite) -> None:
    data = wix_payload("ticket_definitions__query_pricing_options")["ticketDefinitions"][0]
    ticket_definition_upsert_from_wix(site=site, data=data)
    td = TicketDefinition.objects.get(wix_id=data["id"])
    assert (td.pricing_method, td.price, td.unsold_count) == ("options", Decimal("20.00"), None)


def test_a_newer_revision_updates_and_an_older_one_is_stale(site: WixSite) -> None:
    policy_upsert_from_wix(site=site, data=_policy(revision="2", name="Refunds v2"))
    newer = policy_upsert_from_wix(site=site, data=_policy(revision="3", name="Refunds v3"))
    older = policy_upsert_from_wix(site=site, data=_policy(revision="2", name="Refunds v2"))
    assert (newer.outcome, older.outcome) == (UpsertOutcome.UPDATED, UpsertOutcome.STALE)
    policy = Policy.objects.get()
    assert (policy.revision, policy.name, policy.raw["name"]) == (3, "Refunds v3", "Refunds v3")


def test_the_same_content_is_unchanged_but_new_sales_details_update(site: WixSite) -> None:
    ticket_definition_upsert_from_wix(site=site, data=_td())
    assert ticket_definition_upsert_from_wix(site=site, data=_td()).outcome == UpsertOutcome.UNCHANGED
    sold = _td(salesDetails={"unsoldCount": 140, "soldCount": 58, "reservedCount": 2, "soldOut": False})
    assert ticket_definition_upsert_from_wix(site=site, data=sold).outcome == UpsertOutcome.UPDATED
    assert TicketDefinition.objects.get().unsold_count == 140


def test_a_webhook_without_sales_details_keeps_the_known_counts(site: WixSite) -> None:
    ticket_definition_upsert_from_wix(site=site, data=_td())
    without = _td(revision="5", name="GA")
    del without["salesDetails"]
    assert ticket_definition_upsert_from_wix(site=site, data=without).outcome == UpsertOutcome.UPDATED
    td = TicketDefinition.objects.get()
    assert (td.name, td.unsold_count) == ("GA", 143)


def test_events_without_a_revision_are_ordered_by_updated_date(site: WixSite) -> None:
    event = wix_payload("event__query")["events"][0]
    event_upsert_from_wix(site=site, data=event)
    older = {**event, "title": "Old title", "updatedDate": "2026-02-20T00:00:00.000Z"}
    assert event_upsert_from_wix(site=site, data=older).outcome == UpsertOutcome.STALE
    newer = {**event, "title": "New title", "updatedDate": "2026-02-22T00:00:00.000Z"}
    assert event_upsert_from_wix(site=site, data=newer).outcome == UpsertOutcome.UPDATED
    assert Event.objects.get().title == "New title"


def test_every_create_update_and_deletion_is_kept_in_the_history(site: WixSite) -> None:
    from sync.models import MirrorChange

    policy_upsert_from_wix(site=site, data=_policy())
    policy_upsert_from_wix(site=site, data=_policy())  # unchanged: no history
    policy_upsert_from_wix(site=site, data=_policy(revision="3", body="<p>New</p>"))
    policy_delete_from_wix(site=site, wix_id=_policy()["id"])
    history = list(MirrorChange.objects.order_by("pk").values_list("kind", "revision", "changed_fields"))
    assert history[0][:2] == ("created", 2)
    assert history[1:] == [("updated", 3, ["body", "revision"]), ("deleted", 3, [])]


def test_a_deletion_is_final(site: WixSite) -> None:
    policy_upsert_from_wix(site=site, data=_policy())
    assert policy_delete_from_wix(site=site, wix_id=_policy()["id"]).outcome == UpsertOutcome.DELETED
    late = policy_upsert_from_wix(site=site, data=_policy(revision="9", name="Back from the dead"))
    assert late.outcome == UpsertOutcome.TOMBSTONED
    policy = Policy.objects.get()
    assert policy.deleted_at is not None and policy.name == "Refund policy"


def test_a_deletion_before_the_create_leaves_a_tombstone_that_blocks_it(site: WixSite) -> None:
    td_id = _td()["id"]
    assert ticket_definition_delete_from_wix(site=site, wix_id=td_id).outcome == UpsertOutcome.DELETED
    assert ticket_definition_upsert_from_wix(site=site, data=_td()).outcome == UpsertOutcome.TOMBSTONED
    assert TicketDefinition.objects.get().is_deleted
    assert ticket_definition_delete_from_wix(site=site, wix_id=td_id).outcome == UpsertOutcome.UNCHANGED


def test_mirrors_are_per_site(site: WixSite) -> None:
    other = WixSite.objects.create(name="Other", site_id="other", api_key_env="WIX_OTHER")
    policy_upsert_from_wix(site=site, data=_policy())
    assert policy_upsert_from_wix(site=other, data=_policy()).outcome == UpsertOutcome.CREATED
    assert Policy.objects.count() == 2


@pytest.mark.parametrize(
    ("upsert", "data", "message"),
    [
        (policy_upsert_from_wix, _policy(revision=None), r"policy\.revision is missing"),
        (policy_upsert_from_wix, _policy(revision="two"), r"policy\.revision is not an integer string"),
        (policy_upsert_from_wix, _policy(eventId=None), r"policy\.eventId is missing"),
        (policy_upsert_from_wix, {"revision": "1"}, r"policy\.id is missing"),
        (policy_upsert_from_wix, ["not", "an", "object"], r"policy\.id is missing"),
        (ticket_definition_upsert_from_wix, _td(pricingMethod={}), "has none of fixedPrice"),
        (
            ticket_definition_upsert_from_wix,
            _td(pricingMethod={"fixedPrice": {"value": 25, "currency": "EUR"}}),
            r"pricingMethod\.fixedPrice\.value is not a decimal string",
        ),
        (
            ticket_definition_upsert_from_wix,
            _td(pricingMethod={"fixedPrice": {"value": "NaN", "currency": "EUR"}}),
            "not a finite number",
        ),
        (
            ticket_definition_upsert_from_wix,
            _td(pricingMethod={"pricingOptions": {"optionDetails": [{"name": "A"}]}}),
            r"optionDetails\[0\]\.price is not a Money object",
        ),
        (
            ticket_definition_upsert_from_wix,
            _td(salePeriod={"startDate": "next tuesday"}),
            r"salePeriod\.startDate is not an ISO-8601 date-time",
        ),
        (ticket_definition_upsert_from_wix, _td(initialLimit="200"), r"initialLimit is not an integer"),
        (ticket_definition_upsert_from_wix, _td(hidden="no"), r"hidden is not a boolean"),
    ],
)
def test_malformed_entities_raise_an_error_naming_the_field_and_write_nothing(
    site: WixSite, upsert: object, data: object, message: str
) -> None:
    with pytest.raises(MirrorDataError, match=message):
        upsert(site=site, data=data)  # type: ignore[operator]
    assert not Policy.objects.exists() and not TicketDefinition.objects.exists()


def test_other_apps_hear_of_each_real_change_and_of_nothing_else(site: WixSite) -> None:
    """``mirror_changed`` is how notifications learn of sale dates and sold counts: it fires for
    created, updated and deleted, never for unchanged, stale or a write after the tombstone."""
    from sync.services.mirrors import mirror_changed

    heard: list[tuple[str, str, str]] = []

    def listen(
        sender: object, *, site: WixSite, entity_type: str, mirror: object, outcome: str, **_: object
    ) -> None:
        heard.append((entity_type, str(outcome), mirror.wix_id))  # type: ignore[attr-defined]

    mirror_changed.connect(listen)
    try:
        td = _td()
        ticket_definition_upsert_from_wix(site=site, data=td)
        ticket_definition_upsert_from_wix(site=site, data=td)  # unchanged
        ticket_definition_upsert_from_wix(site=site, data=_td(revision="3"))  # stale
        ticket_definition_upsert_from_wix(site=site, data=_td(revision="5", name="Early bird"))
        ticket_definition_delete_from_wix(site=site, wix_id=td["id"])
        ticket_definition_upsert_from_wix(site=site, data=_td(revision="6"))  # after the tombstone
    finally:
        mirror_changed.disconnect(listen)
    assert heard == [
        ("ticket_definition", "created", td["id"]),
        ("ticket_definition", "updated", td["id"]),
        ("ticket_definition", "deleted", td["id"]),
    ]
