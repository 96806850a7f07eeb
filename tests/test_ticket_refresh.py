"""Order Confirmed → coalesced Get Ticket Definition: one Get per burst, never backwards,
the last good value kept while Wix fails."""

from __future__ import annotations

from typing import Any

import pytest
import responses

from sync.models import TicketDefinition, TicketDefinitionRefresh, WebhookDelivery, WixSite
from sync.services.mirrors import UpsertOutcome, ticket_definition_upsert_from_wix
from sync.services.ticket_refresh import ticket_refresh_drain, ticket_refresh_request
from sync.services.webhook_handlers import webhook_drain
from tests.conftest import WIX, wix_payload
from tests.test_webhooks import hook_site, post, sign  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db
TD = wix_payload("ticket_definition__fixed_price")["ticketDefinition"]
GET = f"{WIX}/events/v3/ticket-definitions/{TD['id']}"
ORDER = wix_payload("order_confirmed__two_tickets")


def _td(unsold: int, sold: int, revision: str = "4") -> dict[str, Any]:
    return {
        **TD,
        "revision": revision,
        "salesDetails": {"unsoldCount": unsold, "soldCount": sold, "soldOut": unsold == 0},
    }


def _window_passes() -> None:
    TicketDefinitionRefresh.objects.filter(status="waiting").update(not_before=None)


@responses.activate
def test_a_burst_of_twenty_orders_makes_one_get(client: Any, hook_site: WixSite) -> None:  # noqa: F811
    ticket_definition_upsert_from_wix(site=hook_site, data=_td(143, 55))
    get = responses.get(GET, json={"ticketDefinition": _td(103, 95)})
    for n in range(20):
        order = {**ORDER, "orderNumber": f"N{n}"}
        assert post(client, sign(order, "wix.events.ticketing.events.OrderConfirmed")) == 200
    assert webhook_drain(budget_seconds=10) == 20
    refresh = TicketDefinitionRefresh.objects.get()  # one row for the whole burst
    assert refresh.orders == 20 and refresh.status == "waiting" and refresh.not_before is not None
    assert ticket_refresh_drain(budget_seconds=0.2) == 0  # not due within the window
    _window_passes()
    assert ticket_refresh_drain(budget_seconds=5) == 1
    assert get.call_count == 1
    assert TicketDefinition.objects.get().unsold_count == 103
    assert set(WebhookDelivery.objects.values_list("outcome", flat=True)) == {"refresh queued (1)"}


def test_an_order_during_a_running_get_makes_the_next_refresh(site: WixSite) -> None:
    ticket_refresh_request(site=site, wix_ids=[TD["id"]])
    TicketDefinitionRefresh.objects.update(status="running")  # a worker is at its Get
    assert ticket_refresh_request(site=site, wix_ids=[TD["id"], TD["id"]]) == 1
    assert list(TicketDefinitionRefresh.objects.order_by("pk").values_list("status", "orders")) == [
        ("running", 1),
        ("waiting", 1),
    ]


@responses.activate
def test_wix_failing_keeps_the_last_good_value_and_retries(site: WixSite, settings: Any) -> None:
    settings.WIX_MAX_RETRIES = 0
    ticket_definition_upsert_from_wix(site=site, data=_td(10, 190))
    down = responses.get(GET, status=503, json={"message": "down"})
    ticket_refresh_request(site=site, wix_ids=[TD["id"]])
    _window_passes()
    assert ticket_refresh_drain(budget_seconds=5) == 1
    refresh = TicketDefinitionRefresh.objects.get()
    assert refresh.status == "waiting" and refresh.attempts == 1 and "503" in refresh.last_error
    assert TicketDefinition.objects.get().unsold_count == 10  # the last good value stays
    responses.remove(down)
    responses.get(GET, json={"ticketDefinition": _td(8, 192)})
    _window_passes()  # its retry is due
    assert ticket_refresh_drain(budget_seconds=5) == 1
    refresh.refresh_from_db()
    assert (refresh.status, refresh.outcome) == ("done", "updated")
    assert TicketDefinition.objects.get().unsold_count == 8


def test_a_late_get_at_the_same_revision_with_fewer_sold_never_moves_the_count_back(site: WixSite) -> None:
    assert ticket_definition_upsert_from_wix(site=site, data=_td(8, 192)).outcome == UpsertOutcome.CREATED
    late = ticket_definition_upsert_from_wix(site=site, data=_td(10, 190))
    assert late.outcome == UpsertOutcome.STALE
    assert TicketDefinition.objects.get().unsold_count == 8
    # More sold at the same revision is news; a newer revision always is.
    for data in (_td(7, 193), _td(9, 191, "5")):
        assert ticket_definition_upsert_from_wix(site=site, data=data).outcome == UpsertOutcome.UPDATED
    assert TicketDefinition.objects.get().unsold_count == 9


def test_a_refresh_that_gave_up_is_a_problem_until_a_later_one_succeeds(site: WixSite) -> None:
    from portal.health import problems

    ticket_refresh_request(site=site, wix_ids=[TD["id"]])
    TicketDefinitionRefresh.objects.update(status="failed", last_error="HTTP 401")  # retries spent
    stale = {p.key: p for p in problems()}["stale_sales_details"]
    assert stale.count == 1 and "status__exact=failed" in stale.url
    TicketDefinitionRefresh.objects.create(site=site, wix_id=TD["id"], status="done")
    assert "stale_sales_details" not in {p.key for p in problems()}
