"""The live ticket counter in headless Chromium, embedded in a page of another origin.

A second tiny HTTP server (another origin, as a Wix site is) serves a page with the one
``<script>`` tag. The sandbox sells two VIP tickets and sends the real Order Confirmed to the
live portal; the portal's drains (what the worker runs) process it, make the coalesced Get
and render the counter; the page shows the lower number without a reload, over SSE. A page on
an origin the counter does not allow gets no CORS headers, so its widget shows nothing.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from notifications.models import TicketCounter
from sync.models import TicketDefinitionRefresh, WixSite
from sync.sandbox.demo import demo_id, sandbox_seed
from sync.sandbox.models import SandboxWebhook
from sync.sandbox.services import Kind, entity_query, order_place, sandbox_webhook_send
from sync.services.mirrors import event_upsert_from_wix, ticket_definition_upsert_from_wix
from sync.services.ticket_refresh import ticket_refresh_drain
from sync.services.webhook_handlers import webhook_drain
from tests.browser import browser, screenshot  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _page_server(html: str) -> Iterator[str]:
    """Serve ``html`` at / from 127.0.0.1 on a free port (an origin of its own)."""
    body = html.encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _html(portal: str) -> str:
    return (
        '<!doctype html><html lang="en"><body><h1>Spring Gala</h1><p id="here">'
        f'<script src="{portal}/counter/widget.js" data-counter="{portal}/counter/demo/" async></script>'
        "</p></body></html>"
    )


@pytest.fixture
def sandbox(live_server: Any, settings: Any) -> WixSite:
    settings.WIX_BACKOFF_BASE = 0.001
    settings.SANDBOX_WEBHOOK_URL = f"{live_server.url}/webhooks/wix/"
    settings.TICKET_REFRESH_WINDOW_SECONDS = 0.2
    settings.COUNTER_SSE_SECONDS = 20  # streams end (and reconnect) within the test's life
    site = sandbox_seed()
    WixSite.objects.filter(pk=site.pk).update(api_base_url=f"{live_server.url}/sandbox/wix")
    site.refresh_from_db()
    for data in entity_query(kind=Kind.EVENT, body={"query": {}})["events"]:
        event_upsert_from_wix(site=site, data=data)
    for data in entity_query(kind=Kind.TICKET_DEFINITION, body={"query": {}, "fields": ["SALES_DETAILS"]})[
        "ticketDefinitions"
    ]:
        ticket_definition_upsert_from_wix(site=site, data=data)
    return site


@pytest.fixture
def allowed_page(live_server: Any) -> Iterator[str]:
    yield from _page_server(_html(live_server.url))


@pytest.fixture
def other_page(live_server: Any) -> Iterator[str]:
    yield from _page_server(_html(live_server.url))


def _widget_text(driver: Any) -> str:
    return str(
        driver.execute_script(
            "var s = document.querySelector('.ticket-counter'); return s ? s.textContent : null;"
        )
    )


def _worker_once() -> None:
    """What the worker does for an order: deliver the sandbox's webhook, process it, and make
    the coalesced Get once its window has passed."""
    for hook in SandboxWebhook.objects.filter(status="pending").order_by("pk"):
        assert sandbox_webhook_send(webhook_id=hook.pk) == "sent", hook.error
    assert webhook_drain(budget_seconds=5) >= 1
    time.sleep(0.25)  # TICKET_REFRESH_WINDOW_SECONDS
    assert ticket_refresh_drain(budget_seconds=5) == 1


def test_the_widget_on_another_origin_shows_the_lower_number_after_an_order_without_a_reload(
    browser: Any,  # noqa: F811
    live_server: Any,
    sandbox: WixSite,
    allowed_page: str,
    other_page: str,
) -> None:
    TicketCounter.objects.create(
        site=sandbox,
        slug="demo",
        ticket_definition_wix_id=demo_id("td:spring-gala:vip"),
        allowed_origins=allowed_page,
    )
    driver = browser
    driver.get(allowed_page)
    WebDriverWait(driver, 10).until(lambda d: _widget_text(d) == "Only 5 tickets left at €120.00")
    driver.execute_script("window.notReloaded = true;")
    # The stream is open before the sale (the widget's first value came from the JSON).
    WebDriverWait(driver, 10).until(
        lambda d: d.find_element(By.CLASS_NAME, "ticket-counter").get_attribute("data-live") == "stream"
    )

    order_place(event_id=demo_id("event:spring-gala"), quantities={demo_id("td:spring-gala:vip"): 2})
    started = time.monotonic()
    _worker_once()
    WebDriverWait(driver, 10, poll_frequency=0.05).until(
        lambda d: _widget_text(d) == "Only 3 tickets left at €120.00"
    )
    seen_after = time.monotonic() - started
    assert driver.execute_script("return window.notReloaded === true;")  # the same page, live
    # Pushed over the stream, not picked up by polling.
    assert driver.find_element(By.CLASS_NAME, "ticket-counter").get_attribute("data-live") == "stream"
    assert TicketDefinitionRefresh.objects.get().outcome == "updated"
    print(f"order → page: {seen_after:.2f} s")
    assert seen_after < 5, seen_after  # the goal is 2 s; a loaded CI machine gets some slack
    screenshot(driver, "counter-widget-other-origin")

    # An origin the counter does not list: no CORS headers, so the browser keeps the value out.
    refused = requests.get(f"{live_server.url}/counter/demo/", headers={"Origin": other_page}, timeout=5)
    assert refused.status_code == 200 and "Access-Control-Allow-Origin" not in refused.headers
    allowed = requests.get(f"{live_server.url}/counter/demo/", headers={"Origin": allowed_page}, timeout=5)
    assert allowed.headers["Access-Control-Allow-Origin"] == allowed_page
    driver.get(other_page)
    time.sleep(1.5)
    assert _widget_text(driver) == ""
