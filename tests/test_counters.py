"""Live ticket counters: values from the mirror, served from the cache, kept fresh by the
mirror's signal, streamed over SSE, pushed to Velo."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
import responses
from django.contrib.admin.models import LogEntry
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.urls import reverse

from notifications.counters.services import counter_entry, counter_publish
from notifications.counters.values import counter_document, counter_value, money_format
from notifications.counters.velo import velo_push_drain
from notifications.counters.views import _stream
from notifications.models import CounterPush, TicketCounter
from sync.models import TicketDefinition, WixSite
from sync.services.mirrors import (
    event_upsert_from_wix,
    ticket_definition_delete_from_wix,
    ticket_definition_upsert_from_wix,
)
from tests.conftest import wix_payload

pytestmark = pytest.mark.django_db
TD = wix_payload("ticket_definition__fixed_price")["ticketDefinition"]
ORIGIN = "https://www.example.com"


def _td(**changes: Any) -> dict[str, Any]:
    sales = {"unsoldCount": 143, "soldCount": 55, "soldOut": False}
    sales.update(changes.pop("sales", {}))
    return {**TD, "salesDetails": sales, **changes}


@pytest.fixture
def counter(site: WixSite) -> TicketCounter:
    return TicketCounter.objects.create(
        site=site, slug="gala", ticket_definition_wix_id=TD["id"], threshold=10, allowed_origins=ORIGIN
    )


def _doc(counter: TicketCounter) -> dict[str, Any]:
    definition = TicketDefinition.objects.filter(wix_id=counter.ticket_definition_wix_id).first()
    return counter_document(counter=counter, value=counter_value(counter=counter, definition=definition))


# --- values ------------------------------------------------------------------------------
def test_every_case_reads_from_the_mirror(site: WixSite, counter: TicketCounter) -> None:
    assert _doc(counter)["state"] == "unavailable"  # not mirrored yet
    ticket_definition_upsert_from_wix(site=site, data=_td())
    assert (_doc(counter)["state"], _doc(counter)["text"]) == ("normal", "Tickets €25.00")
    ticket_definition_upsert_from_wix(site=site, data=_td(sales={"unsoldCount": 3, "soldCount": 197}))
    doc = _doc(counter)
    assert (doc["state"], doc["unsold"], doc["text"]) == ("low", 3, "Only 3 tickets left at €25.00")
    assert doc["price"] == "25.00" and doc["currency"] == "EUR" and doc["show_count"] is True
    ticket_definition_upsert_from_wix(
        site=site, data=_td(sales={"unsoldCount": 0, "soldCount": 200, "soldOut": True})
    )
    assert _doc(counter)["text"] == "Sold out"
    ticket_definition_upsert_from_wix(site=site, data=_td(revision="5", saleStatus="SALE_SCHEDULED"))
    assert _doc(counter)["text"] == "Tickets on sale soon"
    ticket_definition_upsert_from_wix(site=site, data=_td(revision="6", hidden=True))
    assert _doc(counter)["text"] == "Tickets unavailable"
    ticket_definition_upsert_from_wix(site=site, data=_td(revision="7"))
    ticket_definition_delete_from_wix(site=site, wix_id=TD["id"])
    assert _doc(counter)["state"] == "unavailable"


def test_unlimited_tickets_show_no_count_and_guest_prices_read_from(
    site: WixSite, counter: TicketCounter
) -> None:
    counter.text_normal = "{unsold} left, {price}"
    ticket_definition_upsert_from_wix(
        site=site,
        data=_td(
            pricingMethod={"guestPrice": {"value": "10.00", "currency": "EUR"}},
            sales={"unsoldCount": None, "soldCount": 5},
        ),
    )
    doc = _doc(counter)
    assert (doc["state"], doc["unsold"], doc["price_from"]) == ("normal", None, True)
    assert doc["text"] == " left, from €10.00"


def test_option_pricing_shows_one_option_or_from_the_lowest(site: WixSite, counter: TicketCounter) -> None:
    options = {
        "pricingOptions": {
            "optionDetails": [
                {"optionId": "adult", "name": "Adult", "price": {"value": "40.00", "currency": "EUR"}},
                {"optionId": "child", "name": "Child", "price": {"value": "20.00", "currency": "EUR"}},
            ]
        }
    }
    ticket_definition_upsert_from_wix(site=site, data=_td(pricingMethod=options, sales={"unsoldCount": 4}))
    assert _doc(counter)["text"] == "Only 4 tickets left at from €20.00"
    counter.text_low, counter.option_id = "Only {unsold} left: {price}", "adult"
    assert _doc(counter)["text"] == "Only 4 left: €40.00"
    counter.option_id = "gone"
    assert _doc(counter)["state"] == "unavailable"


def test_an_ended_or_cancelled_event_makes_its_counters_unavailable(
    site: WixSite, counter: TicketCounter
) -> None:
    event = {**wix_payload("event__query")["events"][0], "id": TD["eventId"], "status": "CANCELED"}
    event_upsert_from_wix(site=site, data=event)
    ticket_definition_upsert_from_wix(site=site, data=_td())
    assert _doc(counter)["state"] == "unavailable"


@pytest.mark.parametrize(
    ("value", "currency", "locale", "text"),
    [
        ("1234.5", "EUR", "en", "€1,234.50"),
        ("1234.5", "EUR", "de-DE", "1.234,50\u00a0€"),
        ("20", "EUR", "nl", "€\u00a020,00"),
        ("20", "USD", "pt-BR", "20,00\u00a0$"),
        ("1500", "JPY", "en", "¥1,500"),
        ("20", "CHF", "en", "CHF\u00a020.00"),
    ],
)
def test_money_is_formatted_in_its_currency_and_the_locale(
    value: str, currency: str, locale: str, text: str
) -> None:
    from decimal import Decimal

    assert money_format(Decimal(value), currency, locale) == text


def test_unknown_placeholders_and_bad_origins_are_refused(site: WixSite) -> None:
    counter = TicketCounter(
        site=site,
        slug="x",
        ticket_definition_wix_id="td",
        text_low="Only {count} left",
        allowed_origins="www.example.com",
        velo_url="https://www.example.com/_functions/counter",
    )
    with pytest.raises(ValidationError) as raised:
        counter.full_clean()
    assert set(raised.value.message_dict) == {"text_low", "allowed_origins", "velo_secret_env"}


# --- serving -----------------------------------------------------------------------------
def test_an_unknown_slug_is_a_json_404(client: Client, db: None) -> None:
    response = client.get("/counter/nope/")
    assert response.status_code == 404 and response.json() == {"error": "unknown counter"}
    assert client.get("/counter/nope/events").status_code == 404


def test_the_endpoint_serves_from_the_cache_with_etag_and_cors_for_allowed_origins_only(
    client: Client, site: WixSite, counter: TicketCounter, django_assert_num_queries: Any
) -> None:
    ticket_definition_upsert_from_wix(site=site, data=_td(sales={"unsoldCount": 3}))
    counter_publish(counter=counter)
    with django_assert_num_queries(0):  # no database read, let alone a write
        allowed = client.get("/counter/gala/", HTTP_ORIGIN=ORIGIN)
        other = client.get("/counter/gala/", HTTP_ORIGIN="https://evil.example.net")
        again = client.get("/counter/gala/", HTTP_ORIGIN=ORIGIN, HTTP_IF_NONE_MATCH=allowed["ETag"])
    assert allowed.status_code == 200 and allowed.json()["text"] == "Only 3 tickets left at €25.00"
    assert allowed["Access-Control-Allow-Origin"] == ORIGIN and allowed["Vary"] == "Origin"
    assert allowed["Cache-Control"] == "public, max-age=1"
    assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == allowed["ETag"]
    preflight = client.options("/counter/gala/", HTTP_ORIGIN=ORIGIN)
    assert preflight.status_code == 204 and "If-None-Match" in preflight["Access-Control-Allow-Headers"]


def test_a_cold_cache_is_filled_by_one_read_and_a_change_reaches_it_through_the_signal(
    client: Client,
    site: WixSite,
    counter: TicketCounter,
    django_assert_max_num_queries: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_assert_max_num_queries(2):  # the counter, its definition (and event)
        first = client.get("/counter/gala/")
    assert first.json()["state"] == "unavailable"
    with django_capture_on_commit_callbacks(execute=True):
        ticket_definition_upsert_from_wix(site=site, data=_td(sales={"unsoldCount": 5}))
    served = client.get("/counter/gala/", HTTP_IF_NONE_MATCH=first["ETag"])
    assert served.status_code == 200 and served.json()["unsold"] == 5
    with django_capture_on_commit_callbacks(execute=True):
        ticket_definition_upsert_from_wix(site=site, data=_td(sales={"unsoldCount": 4, "soldCount": 196}))
    assert client.get("/counter/gala/").json()["text"] == "Only 4 tickets left at €25.00"


def test_the_sse_stream_sends_the_value_then_each_change_and_reads_only_the_cache(
    site: WixSite, counter: TicketCounter, settings: Any, django_assert_num_queries: Any
) -> None:
    settings.COUNTER_SSE_SECONDS, settings.COUNTER_SSE_POLL_SECONDS = 1, 0.01
    ticket_definition_upsert_from_wix(site=site, data=_td(sales={"unsoldCount": 5}))
    entry = counter_entry(slug="gala")
    assert entry is not None
    stream = _stream("gala", entry, "")
    with django_assert_num_queries(0):
        assert next(stream).startswith("retry: ")
        first = next(stream)
    assert first.startswith("id: ") and '"unsold":5' in first
    ticket_definition_upsert_from_wix(site=site, data=_td(sales={"unsoldCount": 4, "soldCount": 196}))
    counter_publish(counter=counter)  # what the signal does after the commit
    with django_assert_num_queries(0):
        second = next(stream)
        rest = list(stream)  # ends on its own after COUNTER_SSE_SECONDS
    assert "event: counter" in second and '"unsold":4' in second and rest == []
    # A client that reconnects with the version it has gets no repeat.
    again = list(_stream("gala", counter_entry(slug="gala") or {}, second.split("\n")[0][4:]))
    assert not any(part.startswith("id: ") for part in again)


def test_the_sse_view_answers_an_event_stream_with_cors(
    client: Client, site: WixSite, counter: TicketCounter, settings: Any
) -> None:
    settings.COUNTER_SSE_SECONDS = 0
    assert client.get("/counter/gala/events").status_code == 503  # streaming off: the widget polls
    settings.COUNTER_SSE_SECONDS, settings.COUNTER_SSE_POLL_SECONDS = 1, 0.05
    response = client.get("/counter/gala/events", HTTP_ORIGIN=ORIGIN)
    assert (
        response["Content-Type"] == "text/event-stream" and response["Access-Control-Allow-Origin"] == ORIGIN
    )
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    assert body.startswith("retry: 1000") and "event: counter" in body


# serialized_rollback: the roles (migration data) are back for the transactional tests after it.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_sse_view_closes_its_database_connection_before_streaming(
    site: WixSite, counter: TicketCounter, settings: Any
) -> None:
    settings.COUNTER_SSE_SECONDS, settings.COUNTER_SSE_POLL_SECONDS = 1, 0.05
    from django.test import RequestFactory

    from notifications.counters.views import counter_events

    connection.ensure_connection()
    response = counter_events(RequestFactory().get("/counter/gala/events"), "gala")
    assert connection.connection is None  # closed: thousands of streams hold no connection
    next(iter(response.streaming_content))  # type: ignore[attr-defined]
    assert connection.connection is None


def test_the_widget_and_the_counter_page_are_served(client: Client, counter: TicketCounter) -> None:
    widget = client.get("/counter/widget.js")
    assert widget.status_code == 200 and b"EventSource" in widget.content
    page = client.get("/counter/gala/page").content.decode()
    assert 'data-counter="http://testserver/counter/gala/"' in page and "/counter/widget.js" in page


# --- Velo --------------------------------------------------------------------------------
VELO = "https://www.example.com/_functions/ticketCounter"


@responses.activate
def test_a_change_is_pushed_to_velo_signed_and_retried_while_the_site_fails(
    site: WixSite, counter: TicketCounter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNTER_VELO_SECRET", "s3cret")
    counter.velo_url, counter.velo_secret_env = VELO, "COUNTER_VELO_SECRET"
    counter.save()
    ticket_definition_upsert_from_wix(site=site, data=_td(sales={"unsoldCount": 5}))
    counter_publish(counter=counter)
    ticket_definition_upsert_from_wix(site=site, data=_td(sales={"unsoldCount": 4, "soldCount": 196}))
    counter_publish(counter=counter)
    counter_publish(counter=counter)  # the same value again: no new push
    push = CounterPush.objects.get()  # one waiting push carries the newest value
    assert push.payload["unsold"] == 4
    down = responses.post(VELO, status=503)
    assert velo_push_drain(budget_seconds=5) == 1
    push.refresh_from_db()
    assert push.status == "waiting" and push.response_status == 503
    responses.remove(down)
    up = responses.post(VELO, json={"ok": True})
    CounterPush.objects.update(not_before=None)
    assert velo_push_drain(budget_seconds=5) == 1
    push.refresh_from_db()
    assert push.status == "sent" and up.call_count == 1
    request = up.calls[0].request
    stamp = request.headers["X-Counter-Timestamp"]
    expected = hmac.new(b"s3cret", stamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Counter-Signature"] == f"sha256={expected}"
    assert json.loads(request.body)["text"] == "Only 4 tickets left at €25.00"


@responses.activate
def test_a_velo_function_refusing_the_push_fails_it_for_staff(
    site: WixSite, counter: TicketCounter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNTER_VELO_SECRET", "s3cret")
    counter.velo_url, counter.velo_secret_env = VELO, "COUNTER_VELO_SECRET"
    counter.save()
    counter_publish(counter=counter)
    responses.post(VELO, status=403, body="bad signature")
    velo_push_drain(budget_seconds=5)
    push = CounterPush.objects.get()
    assert push.status == "failed" and "403" in push.last_error
    from portal.health import problems

    failed = {p.key: p for p in problems()}["counter_pushes_failed"]
    assert failed.count == 1 and failed.url.endswith("?status__exact=failed")
    CounterPush.objects.create(counter=counter, status="sent", payload={})
    assert "counter_pushes_failed" not in {p.key for p in problems()}


# --- admin -------------------------------------------------------------------------------
def test_the_admin_previews_every_case(admin_client: Client, site: WixSite, counter: TicketCounter) -> None:
    ticket_definition_upsert_from_wix(site=site, data=_td())
    page = admin_client.get(reverse("admin:notifications_ticketcounter_change", args=[counter.pk]))
    html = page.content.decode()
    for state, text in [
        ("normal", "Tickets €25.00"),
        ("low", "Only 3 tickets left at €25.00"),
        ("sold_out", "Sold out"),
        ("not_on_sale", "Tickets on sale soon"),
        ("unavailable", "Tickets unavailable"),
    ]:
        assert f'id="preview-{state}"' in html and text in html
    assert "Normal (now)" in html
    assert admin_client.get(reverse("admin:notifications_ticketcounter_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:index")).content.decode().count('id="counters-freshness"') == 1


def test_publish_now_is_audited_and_needs_the_change_permission(
    admin_client: Client, viewer: Any, counter: TicketCounter
) -> None:
    url = reverse("admin:notifications_ticketcounter_changelist")
    admin_client.post(url, {"action": "publish_now", "_selected_action": [counter.pk]})
    assert LogEntry.objects.get().change_message == "Published again by hand."
    viewing = Client()
    viewing.force_login(viewer)
    assert viewing.get(url).status_code == 200
    assert "publish_now" not in viewing.get(url).content.decode()


def test_creating_a_counter_in_the_admin_serves_it(
    admin_client: Client, site: WixSite, django_capture_on_commit_callbacks: Any
) -> None:
    ticket_definition_upsert_from_wix(site=site, data=_td(sales={"unsoldCount": 2}))
    form = {
        "slug": "new",
        "site": site.pk,
        "ticket_definition_wix_id": TD["id"],
        "option_id": "",
        "threshold": 10,
        "text_normal": "Tickets {price}",
        "text_low": "Last {unsold}!",
        "text_sold_out": "Sold out",
        "text_not_on_sale": "Soon",
        "text_unavailable": "n/a",
        "text_from": "from {price}",
        "locale": "en",
        "allowed_origins": ORIGIN,
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:notifications_ticketcounter_add"), form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Client().get("/counter/new/").json()["text"] == "Last 2!"


def test_buy_tickets_in_the_sandbox_admin_places_an_order_that_sends_order_confirmed(
    admin_client: Client, settings: Any
) -> None:
    from sync.sandbox.demo import demo_id, sandbox_seed
    from sync.sandbox.models import SandboxEntity, SandboxWebhook

    sandbox_seed()
    vip = SandboxEntity.objects.get(wix_id=demo_id("td:spring-gala:vip"))
    url = reverse("admin:sandbox_sandboxticketdefinition_changelist")
    response = admin_client.post(url, {"action": "buy_tickets", "_selected_action": [vip.pk]}, follow=True)
    assert "Order Confirmed is on its way" in response.content.decode()
    vip.refresh_from_db()
    assert vip.data["salesDetails"]["unsoldCount"] == 4
    assert SandboxWebhook.objects.get().event_type == "wix.events.ticketing.events.OrderConfirmed"


# Transactional: outside a transaction the receiver's on_commit runs at once, as in a worker.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_cache_that_fails_never_fails_the_mirror_write(
    site: WixSite, counter: TicketCounter, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    from notifications.counters import services

    def down(**kwargs: Any) -> int:
        raise ConnectionError("redis is down")

    monkeypatch.setattr(services, "counters_publish_for", down)
    result = ticket_definition_upsert_from_wix(site=site, data=_td(sales={"unsoldCount": 5}))
    assert result.changed and TicketDefinition.objects.get().unsold_count == 5
    assert "redis is down" in caplog.text  # logged for staff, not raised into the write


def test_only_superusers_choose_where_a_counter_is_pushed(
    admin_client: Client, operator: Any, counter: TicketCounter
) -> None:
    """An operator edits counters, but the Velo URL and the secret's variable are read-only to
    them: otherwise they could send the site's signed pushes to an address of their choosing."""
    url = reverse("admin:notifications_ticketcounter_change", args=[counter.pk])
    editing = Client()
    editing.force_login(operator)
    html = editing.get(url).content.decode()
    assert 'name="threshold"' in html and 'name="velo_url"' not in html
    assert 'name="velo_url"' in admin_client.get(url).content.decode()
