"""The sandbox Wix site into a real pretix, and back out through pretix's API.

Select these alone with ``bash scripts/test.sh -m pretix``.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

import pytest

from sync.clients.base import PushContext
from sync.models import (
    BackfillRun,
    ExternalLink,
    ExternalSystem,
    FieldMapping,
    LinkRepair,
    OutboundWork,
    SyncLog,
    WebhookDelivery,
    WixSite,
)
from sync.sandbox.demo import demo_id, sandbox_seed
from sync.sandbox.models import SandboxWebhook
from sync.sandbox.services import Kind, entity_create, entity_delete, entity_update, sandbox_webhook_send
from sync.services.backfill import backfill_execute, backfill_start
from sync.services.pretix import pretix_system_ensure
from sync.services.push import push_drain
from sync.services.webhook_handlers import webhook_process
from tests.browser import browser  # noqa: F401 - fixture
from tests.pretix_server import Pretix, pretix, pretix_server  # noqa: F401 - fixtures

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pretix, pytest.mark.e2e]

TOKEN_ENV = "EXTERNAL_PRETIX_TOKEN"


@pytest.fixture
def seeded(
    pretix: Pretix,  # noqa: F811
    live_server: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[WixSite, ExternalSystem]:
    """The sandbox and a pretix system (the generic sandbox ticketing system switched off)."""
    settings.WIX_BACKOFF_BASE = 0.001
    settings.SANDBOX_WEBHOOK_URL = f"{live_server.url}/webhooks/wix/"
    monkeypatch.setenv(TOKEN_ENV, pretix.token)
    site = sandbox_seed()
    WixSite.objects.filter(pk=site.pk).update(api_base_url=f"{live_server.url}/sandbox/wix")
    site.refresh_from_db()
    ExternalSystem.objects.update(is_active=False)
    system = pretix_system_ensure(url=pretix.url, organizer=pretix.organizer, token_env=TOKEN_ENV)
    return site, system


def _backfill(site: WixSite) -> None:
    run, _ = backfill_start(site=site, trigger=BackfillRun.Trigger.COMMAND)
    backfill_execute(run_id=run.pk)


@pytest.fixture
def synced(seeded: tuple[WixSite, ExternalSystem]) -> tuple[WixSite, ExternalSystem]:
    """The sandbox backfilled into pretix."""
    _backfill(seeded[0])
    _drain()
    return seeded


def _drain() -> None:
    push_drain(budget_seconds=120)
    dead = list(OutboundWork.objects.filter(status="dead").values_list("entity_type", "wix_id", "last_error"))
    assert not dead, dead


def _webhooks() -> list[str]:
    """Send what the sandbox queued as signed webhooks, process them, push the result."""
    outcomes = []
    for hook in SandboxWebhook.objects.exclude(status="sent").order_by("pk"):
        assert sandbox_webhook_send(webhook_id=hook.pk) == "sent"
    for delivery in WebhookDelivery.objects.filter(status="received").order_by("pk"):
        outcomes.append(webhook_process(delivery_id=delivery.pk))
    _drain()
    return outcomes


def _event(pretix: Pretix, key: str) -> dict[str, Any]:  # noqa: F811
    slug = ExternalLink.objects.get(entity_type="event", wix_id=demo_id(f"event:{key}")).external_id
    return pretix.get(f"events/{slug}/")


def _item(pretix: Pretix, key: str) -> tuple[dict[str, Any], dict[str, Any]]:  # noqa: F811
    """The pretix item and quota linked to a demo ticket definition, read through pretix's API."""
    slug, item_id, quota_id = ExternalLink.objects.get(wix_id=demo_id(f"td:{key}")).external_id.split("/")
    return pretix.get(f"events/{slug}/items/{item_id}/"), pretix.get(f"events/{slug}/quotas/{quota_id}/")


def _confirm_texts(pretix: Pretix, event_key: str) -> list[str]:  # noqa: F811
    slug = _event(pretix, event_key)["slug"]
    return [text["en"] for text in pretix.get(f"events/{slug}/settings/")["confirm_texts"]]


def test_backfill_builds_events_items_quotas_and_confirm_texts(
    synced: tuple[WixSite, ExternalSystem],
    pretix: Pretix,  # noqa: F811
) -> None:
    events = pretix.results("events/")
    assert sorted(e["slug"] for e in events) == ["jazz-night", "open-air-cinema", "spring-gala"]
    gala = _event(pretix, "spring-gala")
    assert gala["name"] == {"en": "Spring Gala"} and gala["currency"] == "EUR"
    assert gala["meta_data"]["wix_event_id"] == demo_id("event:spring-gala")
    assert gala["location"] == {"en": "Teatro Nacional"} and gala["timezone"] == "Europe/Lisbon"
    assert {"wix_ticket_definition_id", "wix_option_id"} <= gala["item_meta_properties"].keys()

    ga, ga_quota = _item(pretix, "spring-gala:ga")
    assert ga["name"] == {"en": "General Admission"} and ga["default_price"] == "25.00"
    assert ga["description"] == {"en": "Standing area, doors at 19:00."}
    assert ga["active"] is True and ga["admission"] is True and ga["free_price"] is False
    assert ga["meta_data"]["wix_ticket_definition_id"] == demo_id("td:spring-gala:ga")
    assert ga["available_from"] is not None and ga["available_until"] is not None
    assert ga_quota["size"] == 200 and ga_quota["items"] == [ga["id"]]

    seated, seated_quota = _item(pretix, "spring-gala:seated")
    assert [(v["value"]["en"], v["default_price"]) for v in seated["variations"]] == [
        ("Adult", "40.00"),
        ("Child", "20.00"),
    ]
    assert [v["meta_data"]["wix_option_id"] for v in seated["variations"]] == [
        demo_id("opt:gala:adult"),
        demo_id("opt:gala:child"),
    ]
    assert seated["default_price"] == "20.00"
    assert seated_quota["size"] == 120
    assert sorted(seated_quota["variations"]) == sorted(v["id"] for v in seated["variations"])

    supporter, supporter_quota = _item(pretix, "jazz-night:supporter")
    assert supporter["free_price"] is True and supporter["default_price"] == "10.00"
    assert supporter_quota["size"] is None  # no Wix limit: unlimited
    blanket, _ = _item(pretix, "open-air-cinema:blanket")
    assert blanket["active"] is False and blanket["default_price"] == "8.50"
    free, _ = _item(pretix, "open-air-cinema:free")
    assert Decimal(free["default_price"]) == 0

    assert _confirm_texts(pretix, "spring-gala") == [
        "**Refund policy**\n\nFull refund up to 7 days before the event; 50% afterwards.",
        "**Code of conduct**\n\nBe kind. Harassment of any kind is not tolerated.",
    ]
    assert [t.split("\n")[0] for t in _confirm_texts(pretix, "open-air-cinema")] == [
        "**Refund policy**",
        "**Weather**",
        "**Accessibility**",
    ]
    assert ExternalLink.objects.filter(entity_type="event").count() == 3
    assert ExternalLink.objects.filter(entity_type="ticket_definition").count() == 8
    assert ExternalLink.objects.filter(entity_type="policy").count() == 6
    for event in events:
        slug = event["slug"]
        linked = ExternalLink.objects.filter(
            entity_type="ticket_definition", external_id__startswith=f"{slug}/"
        )
        assert len(pretix.results(f"events/{slug}/items/")) == linked.count()
        assert len(pretix.results(f"events/{slug}/quotas/")) == linked.count()

    # A second backfill finds nothing to change and makes no call to pretix.
    calls = SyncLog.objects.count()
    run, _ = backfill_start(site=synced[0], trigger=BackfillRun.Trigger.COMMAND)
    backfill_execute(run_id=run.pk)
    _drain()
    assert SyncLog.objects.count() == calls


def test_webhook_updates_and_deletes_change_the_right_pretix_records(
    synced: tuple[WixSite, ExternalSystem],
    pretix: Pretix,  # noqa: F811
) -> None:
    links_before = dict(ExternalLink.objects.values_list("wix_id", "external_id"))
    entity_update(
        kind=Kind.TICKET_DEFINITION,
        wix_id=demo_id("td:spring-gala:vip"),
        changes={
            "revision": "1",
            "name": "VIP Lounge",
            "initialLimit": 8,
            "pricingMethod": {"fixedPrice": {"value": "150.00", "currency": "EUR"}},
        },
    )
    entity_update(
        kind=Kind.TICKET_DEFINITION,
        wix_id=demo_id("td:spring-gala:seated"),
        changes={
            "revision": "1",
            "pricingMethod": {
                "pricingOptions": {
                    "optionDetails": [
                        {
                            "optionId": demo_id("opt:gala:adult"),
                            "name": "Adult",
                            "price": {"value": "45.00", "currency": "EUR"},
                        },
                        {
                            "optionId": demo_id("opt:gala:senior"),
                            "name": "Senior",
                            "price": {"value": "30.00", "currency": "EUR"},
                        },
                    ]
                }
            },
        },
    )
    entity_update(
        kind=Kind.POLICY,
        wix_id=demo_id("policy:spring-gala:refund"),
        changes={"revision": "1", "body": "<p>No refunds.</p>"},
    )
    entity_delete(kind=Kind.POLICY, wix_id=demo_id("policy:open-air-cinema:weather"))
    entity_delete(kind=Kind.TICKET_DEFINITION, wix_id=demo_id("td:jazz-night:supporter"))
    entity_create(
        kind=Kind.POLICY,
        data={"eventId": demo_id("event:jazz-night"), "name": "Photography", "body": "<p>No flash.</p>"},
    )
    entity_update(
        kind=Kind.EVENT,
        wix_id=demo_id("event:spring-gala"),
        changes={"revision": "1", "title": "Spring Gala 2027"},
    )
    outcomes = _webhooks()
    assert sorted(outcomes) == ["created", "deleted", "deleted", "updated", "updated", "updated", "updated"]
    gala = _event(pretix, "spring-gala")
    assert gala["name"] == {"en": "Spring Gala 2027"} and gala["slug"] == "spring-gala"

    vip, vip_quota = _item(pretix, "spring-gala:vip")
    assert vip["name"] == {"en": "VIP Lounge"} and vip["default_price"] == "150.00"
    assert vip_quota["size"] == 8
    seated, seated_quota = _item(pretix, "spring-gala:seated")
    assert [(v["value"]["en"], v["default_price"]) for v in seated["variations"]] == [
        ("Adult", "45.00"),
        ("Senior", "30.00"),
    ]
    assert sorted(seated_quota["variations"]) == sorted(v["id"] for v in seated["variations"])
    assert _confirm_texts(pretix, "spring-gala") == [
        "**Refund policy**\n\nNo refunds.",
        "**Code of conduct**\n\nBe kind. Harassment of any kind is not tolerated.",
    ]
    assert [t.split("\n")[0] for t in _confirm_texts(pretix, "open-air-cinema")] == [
        "**Refund policy**",
        "**Accessibility**",
    ]
    assert _confirm_texts(pretix, "jazz-night") == [
        "**Age restriction**\n\nGuests must be 16 or older.",
        "**Photography**\n\nNo flash.",
    ]
    slug, item_id, quota_id = links_before[demo_id("td:jazz-night:supporter")].split("/")
    session = pretix.session()
    assert session.get(f"{pretix.api}/events/{slug}/items/{item_id}/", timeout=30).status_code == 404
    assert session.get(f"{pretix.api}/events/{slug}/quotas/{quota_id}/", timeout=30).status_code == 404
    assert ExternalLink.objects.get(wix_id=demo_id("td:jazz-night:supporter")).deleted_at is not None
    # Updates never rewrite a link.
    for wix_id, external_id in links_before.items():
        assert ExternalLink.objects.get(wix_id=wix_id).external_id == external_id


def test_a_record_deleted_in_pretix_is_recreated_and_the_link_repaired_with_a_reason(
    synced: tuple[WixSite, ExternalSystem],
    pretix: Pretix,  # noqa: F811
) -> None:
    old = ExternalLink.objects.get(wix_id=demo_id("td:spring-gala:ga")).external_id
    slug, item_id, _ = old.split("/")
    assert (
        pretix.session().delete(f"{pretix.api}/events/{slug}/items/{item_id}/", timeout=30).status_code == 204
    )
    entity_update(
        kind=Kind.TICKET_DEFINITION,
        wix_id=demo_id("td:spring-gala:ga"),
        changes={"revision": "1", "name": "GA"},
    )
    _webhooks()
    link = ExternalLink.objects.get(wix_id=demo_id("td:spring-gala:ga"))
    assert link.external_id != old
    item, quota = _item(pretix, "spring-gala:ga")
    assert item["name"] == {"en": "GA"} and quota["size"] == 200 and quota["items"] == [item["id"]]
    repair = LinkRepair.objects.get(link=link)
    assert (repair.old_external_id, repair.new_external_id) == (old, link.external_id)
    assert "recreated" in repair.reason and repair.user is None
    assert SyncLog.objects.filter(wix_id=link.wix_id, note__contains="recreated").exists()
    assert OutboundWork.objects.filter(wix_id=link.wix_id, outcome="recreated").count() == 1


def test_pretix_validation_errors_are_dead_letters_and_an_outage_is_retried(
    synced: tuple[WixSite, ExternalSystem],
    pretix: Pretix,  # noqa: F811
) -> None:
    _, system = synced
    FieldMapping.objects.create(
        system=system,
        entity_type="ticket_definition",
        target_field="tax_rule",
        transform="constant",
        argument="999999",
    )
    entity_update(
        kind=Kind.TICKET_DEFINITION, wix_id=demo_id("td:spring-gala:vip"), changes={"revision": "1"}
    )
    _send_and_process()
    push_drain(budget_seconds=60)
    dead = OutboundWork.objects.get(status="dead")
    assert dead.wix_id == demo_id("td:spring-gala:vip")
    assert "tax_rule" in dead.last_error and "999999" in dead.last_error
    FieldMapping.objects.filter(target_field="tax_rule").delete()

    # pretix "down": nothing listens where the system points.
    url = system.base_url
    ExternalSystem.objects.filter(pk=system.pk).update(base_url="http://127.0.0.1:9")
    entity_update(
        kind=Kind.TICKET_DEFINITION,
        wix_id=demo_id("td:jazz-night:early"),
        changes={"revision": "1", "name": "Early"},
    )
    _send_and_process()
    push_drain(budget_seconds=60)
    waiting = OutboundWork.objects.get(wix_id=demo_id("td:jazz-night:early"), status="pending")
    assert waiting.attempts == 1 and "Connection" in waiting.last_error
    ExternalSystem.objects.filter(pk=system.pk).update(base_url=url)
    OutboundWork.objects.filter(status="pending").update(not_before=None)  # time passes
    _drain_ignoring_dead()
    early, _ = _item(pretix, "jazz-night:early")
    assert early["name"] == {"en": "Early"}
    assert len(pretix.results(f"events/{_event(pretix, 'jazz-night')['slug']}/items/")) == 3


def _send_and_process() -> None:
    for hook in SandboxWebhook.objects.exclude(status="sent").order_by("pk"):
        sandbox_webhook_send(webhook_id=hook.pk)
    for delivery in WebhookDelivery.objects.filter(status="received").order_by("pk"):
        webhook_process(delivery_id=delivery.pk)


def _drain_ignoring_dead() -> None:
    push_drain(budget_seconds=60)
    assert not OutboundWork.objects.filter(status="pending").exists()


@pytest.mark.browser
def test_staff_connect_a_pretix_in_the_admin_and_test_the_connection(
    pretix: Pretix,  # noqa: F811
    browser: Any,  # noqa: F811
    live_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.contrib.auth.models import User
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    monkeypatch.setenv(TOKEN_ENV, pretix.token)  # the live server runs in this process
    User.objects.create_superuser("staff", "staff@example.com", "a-long-password-1")
    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("staff")
    browser.find_element(By.NAME, "password").send_keys("a-long-password-1")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda d: "log out" in d.page_source.lower())

    browser.get(f"{live_server.url}/admin/sync/externalsystem/add/")
    browser.find_element(By.NAME, "name").send_keys("Box office")
    Select(browser.find_element(By.NAME, "kind")).select_by_value("pretix")
    browser.find_element(By.NAME, "base_url").send_keys(pretix.url)
    Select(browser.find_element(By.NAME, "auth_type")).select_by_value("token")
    browser.find_element(By.NAME, "auth_secret_env").send_keys(TOKEN_ENV)
    browser.find_element(By.NAME, "organizer").send_keys(pretix.organizer)
    browser.find_element(By.NAME, "_save").click()
    WebDriverWait(browser, 10).until(lambda d: "Default pretix mappings added" in d.page_source)
    system = ExternalSystem.objects.get(name="Box office")
    assert system.mappings.count() == 18

    browser.find_element(By.CSS_SELECTOR, f"input[name=_selected_action][value='{system.pk}']").click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("test_connection")
    browser.find_element(By.NAME, "index").click()
    WebDriverWait(browser, 30).until(lambda d: "Create events" in d.page_source)
    successes = [m.text for m in browser.find_elements(By.CSS_SELECTOR, ".messagelist .success")]
    assert "Box office: API token and organizer: Organizer 'demo'." in successes
    assert "Box office: Create events: granted" in successes
    assert not browser.find_elements(By.CSS_SELECTOR, ".messagelist .error")


def test_the_quick_start_connects_the_pretix_named_in_the_environment(
    pretix: Pretix,  # noqa: F811
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from io import StringIO

    from django.core.management import call_command

    settings.PORTAL_SANDBOX = True
    settings.DEBUG = True
    monkeypatch.setenv("PRETIX_URL", pretix.url)
    monkeypatch.setenv("PRETIX_ORGANIZER", pretix.organizer)
    monkeypatch.setenv(TOKEN_ENV, pretix.token)
    out = StringIO()
    call_command("quickstart", "--no-serve", stdout=out)
    system = ExternalSystem.objects.get(kind="pretix")
    assert (system.base_url, system.organizer, system.auth_secret_env) == (pretix.url, "demo", TOKEN_ENV)
    assert "[ok] Create events: granted" in out.getvalue()

    monkeypatch.setenv(TOKEN_ENV, "not-the-token")
    with pytest.raises(Exception, match="pretix is not ready"):
        call_command("pretix_connect", url=pretix.url, organizer="demo", stdout=out)
    assert "[MISSING] API token: pretix rejected the token (401)." in out.getvalue()


# --- issue 9, point 5: pretix as an organiser would expect it --------------------------------------
def _dead() -> list[OutboundWork]:
    return list(OutboundWork.objects.filter(status="dead").order_by("pk"))


def test_an_events_currency_stays_when_a_ticket_in_another_currency_appears(
    synced: tuple[WixSite, ExternalSystem],
    pretix: Pretix,  # noqa: F811
) -> None:
    gala = _event(pretix, "spring-gala")
    assert gala["currency"] == "EUR"
    assert ExternalLink.objects.get(wix_id=demo_id("event:spring-gala")).external_facts == {"currency": "EUR"}
    entity_create(
        kind=Kind.TICKET_DEFINITION,
        data={
            "eventId": demo_id("event:spring-gala"),
            "name": "Dollar seat",
            "feeType": "NO_FEE",
            "pricingMethod": {"fixedPrice": {"value": "30.00", "currency": "USD"}},
        },
    )
    entity_update(
        kind=Kind.EVENT,
        wix_id=demo_id("event:spring-gala"),
        changes={"revision": "1", "title": "Spring Gala!"},
    )
    _send_and_process()
    push_drain(budget_seconds=60)
    gala = _event(pretix, "spring-gala")
    assert (
        gala["name"] == {"en": "Spring Gala!"} and gala["currency"] == "EUR"
    )  # the edit reached pretix, alone
    [dead] = _dead()
    assert dead.entity_type == "ticket_definition" and "USD" in dead.last_error and "EUR" in dead.last_error
    assert len(pretix.results(f"events/{gala['slug']}/items/")) == 3  # nothing was made for it


def test_texts_longer_than_pretix_allows_are_cut_and_leave_no_orphan(
    synced: tuple[WixSite, ExternalSystem],
    pretix: Pretix,  # noqa: F811
) -> None:
    """Wix's own names are short; staff mappings that add a description are not."""
    _, system = synced
    system.mappings.filter(entity_type="ticket_definition", target_field="name.en").update(
        source_path="", transform="template", argument="{name}: {description}"
    )
    system.mappings.filter(entity_type="event", target_field="name.en").update(
        source_path="", transform="template", argument="{title}: {shortDescription}"
    )
    long_text = "Standing area, " + "very " * 60 + "close to the stage."
    entity_update(
        kind=Kind.TICKET_DEFINITION,
        wix_id=demo_id("td:spring-gala:ga"),
        changes={"revision": "1", "description": long_text},
    )
    entity_update(
        kind=Kind.EVENT,
        wix_id=demo_id("event:jazz-night"),
        changes={"revision": "1", "shortDescription": long_text},
    )
    entity_create(
        kind=Kind.TICKET_DEFINITION,
        data={
            "eventId": demo_id("event:jazz-night"),
            "name": "Late entry",
            "description": long_text,
            "feeType": "NO_FEE",
            "pricingMethod": {"fixedPrice": {"value": "12.00", "currency": "EUR"}},
        },
    )
    _webhooks()  # no dead letter
    ga, ga_quota = _item(pretix, "spring-gala:ga")
    assert 250 <= len(ga["name"]["en"]) <= 255 and ga["name"]["en"].endswith("…")
    assert 195 <= len(ga_quota["name"]) <= 200  # pretix refuses a longer one
    assert 195 <= len(_event(pretix, "jazz-night")["name"]["en"]) <= 200
    slug = _event(pretix, "jazz-night")["slug"]
    items, quotas = pretix.results(f"events/{slug}/items/"), pretix.results(f"events/{slug}/quotas/")
    assert len(items) == len(quotas) == 4  # every item has its quota (one of them new)
    assert {i for q in quotas for i in q["items"]} == {i["id"] for i in items}


def _pretix_event_by_hand(pretix: Pretix, slug: str, name: str, currency: str = "EUR") -> None:  # noqa: F811
    response = pretix.session().post(
        f"{pretix.api}/events/",
        json={"name": {"en": name}, "slug": slug, "date_from": "2027-01-01T20:00:00Z", "currency": currency},
        timeout=30,
    )
    assert response.status_code == 201, response.text


def test_a_slug_another_pretix_event_has_is_fixed_by_adopting_it_or_by_another_slug(
    seeded: tuple[WixSite, ExternalSystem],
    pretix: Pretix,  # noqa: F811
    admin_client: Any,
) -> None:
    site, _ = seeded
    _pretix_event_by_hand(pretix, "jazz-night", "Jazz night (box office)", currency="EUR")
    _pretix_event_by_hand(pretix, "spring-gala", "Someone else's gala")
    _backfill(site)
    push_drain(budget_seconds=120)
    jazz = OutboundWork.objects.get(entity_type="event", wix_id=demo_id("event:jazz-night"), status="dead")
    assert "'jazz-night'" in jazz.last_error and "'Jazz night (box office)'" in jazz.last_error
    assert "not made by the portal" in jazz.last_error
    gala = OutboundWork.objects.get(entity_type="event", wix_id=demo_id("event:spring-gala"), status="dead")

    # Adopt the box office's jazz night, in the admin, with a confirmation first.
    url = f"/admin/sync/outboundwork/{jazz.pk}/pretix-adopt/"
    assert "Yes, adopt the pretix event" in admin_client.post(url, {"reason": "ours"}).content.decode()
    assert pretix.get("events/jazz-night/")["meta_data"].get("wix_event_id") in (None, "")
    admin_client.post(url, {"reason": "ours", "confirm": "yes"})
    # Another slug for the gala.
    url = f"/admin/sync/outboundwork/{gala.pk}/pretix-slug/"
    admin_client.post(url, {"slug": "spring-gala-2026", "reason": "", "confirm": "yes"})
    _drain()

    jazz_event = pretix.get("events/jazz-night/")
    assert jazz_event["meta_data"]["wix_event_id"] == demo_id("event:jazz-night")
    assert jazz_event["name"] == {"en": "Jazz Night"}  # pushed again from Wix
    assert len(pretix.results("events/jazz-night/items/")) == 3
    assert _confirm_texts(pretix, "jazz-night") == ["**Age restriction**\n\nGuests must be 16 or older."]
    assert pretix.get("events/spring-gala/")["name"] == {"en": "Someone else's gala"}  # untouched
    assert _event(pretix, "spring-gala")["slug"] == "spring-gala-2026"
    assert len(pretix.results("events/spring-gala-2026/items/")) == 3
    repairs = {r.new_external_id: r for r in LinkRepair.objects.select_related("user")}
    assert set(repairs) == {"jazz-night", "spring-gala-2026"} and repairs["jazz-night"].user is not None


RICH_POLICY = (
    "<p>Rain or shine: we screen&nbsp;outdoors. Caf&eacute; &amp; bar stay open.</p>"
    "<ul><li><p>A storm moves the screening to the <strong>next day</strong>.</p></li>"
    "<li>Tickets stay valid; <u>no refunds</u>.</li></ul>"
    '<p>Forecast: <a href="https://www.ipma.pt/en/" target="_blank" rel="noopener">IPMA</a>.</p>'
)


@pytest.mark.browser
def test_pretixs_checkout_shows_a_wix_policy_as_formatted_text(
    synced: tuple[WixSite, ExternalSystem],
    pretix: Pretix,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    # One free ticket on sale (a free shop needs no payment provider to go live).
    entity_delete(kind=Kind.TICKET_DEFINITION, wix_id=demo_id("td:open-air-cinema:blanket"))
    entity_update(
        kind=Kind.POLICY,
        wix_id=demo_id("policy:open-air-cinema:weather"),
        changes={"revision": "1", "body": RICH_POLICY},
    )
    _webhooks()
    slug = _event(pretix, "open-air-cinema")["slug"]
    response = pretix.session().patch(f"{pretix.api}/events/{slug}/", json={"live": True}, timeout=30)
    assert response.status_code == 200, response.text
    free, _ = _item(pretix, "open-air-cinema:free")

    browser.get(f"{pretix.url}/{pretix.organizer}/{slug}/")
    amount = browser.find_element(By.NAME, f"item_{free['id']}")
    amount.clear()
    amount.send_keys("1")
    browser.find_element(By.CSS_SELECTOR, "#btn-add-to-cart").click()
    WebDriverWait(browser, 30).until(lambda d: "added to your cart" in d.page_source)
    browser.get(f"{pretix.url}/{pretix.organizer}/{slug}/checkout/start")
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.NAME, "email"))
    browser.find_element(By.NAME, "email").send_keys("guest@example.com")
    for repeat in browser.find_elements(By.NAME, "email_repeat"):
        repeat.send_keys("guest@example.com")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit].btn-primary").click()
    panel = WebDriverWait(browser, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, ".panel-confirm"))
    if os.environ.get("PRETIX_SCREENSHOT"):
        panel.screenshot(os.environ["PRETIX_SCREENSHOT"])  # to look at it
    weather = next(
        label for label in panel.find_elements(By.CSS_SELECTOR, "label") if "Rain or shine" in label.text
    )
    assert weather.find_element(By.TAG_NAME, "strong").text == "Weather"
    items = [li.text for li in weather.find_elements(By.TAG_NAME, "li")]
    assert items == ["A storm moves the screening to the next day.", "Tickets stay valid; no refunds."]
    link = weather.find_element(By.TAG_NAME, "a")
    assert link.text == "IPMA" and "ipma.pt" in link.get_attribute("href")
    assert "Café & bar stay open." in weather.text
    for raw in ("<p>", "<u>", "&amp;", "&nbsp;", "&eacute;", "**"):
        assert raw not in panel.text


def test_reconciliation_reports_hand_edits_in_pretix_and_overwrites_them_when_asked(
    synced: tuple[WixSite, ExternalSystem],
    pretix: Pretix,  # noqa: F811
) -> None:
    from sync.services.reconcile import reconcile_site

    site, system = synced
    ga, ga_quota = _item(pretix, "spring-gala:ga")
    slug = _event(pretix, "spring-gala")["slug"]
    session = pretix.session()
    for path, body in [
        (f"events/{slug}/items/{ga['id']}/", {"name": {"en": "GA (last few!)"}, "default_price": "27.00"}),
        (f"events/{slug}/quotas/{ga_quota['id']}/", {"size": 150}),
        (f"events/{slug}/", {"location": {"en": "Teatro Nacional, sala 2"}}),
    ]:
        assert session.patch(f"{pretix.api}/{path}", json=body, timeout=30).status_code == 200

    run = reconcile_site(site=site)
    assert run.errors == [] and not OutboundWork.objects.filter(status="pending").exists()  # kept
    fields = {(row["entity_type"], row["wix_id"]): row["fields"] for row in run.drift}
    assert fields == {
        ("ticket_definition", demo_id("td:spring-gala:ga")): ["default_price", "name.en", "quota.size"],
        ("event", demo_id("event:spring-gala")): ["location.en"],
    }
    link = ExternalLink.objects.get(wix_id=demo_id("td:spring-gala:ga"))
    assert link.drift["name.en"] == {"pushed": "General Admission", "found": "GA (last few!)"}
    assert _item(pretix, "spring-gala:ga")[0]["name"] == {"en": "GA (last few!)"}  # kept

    ExternalSystem.objects.filter(pk=system.pk).update(drift_action="overwrite")
    run = reconcile_site(site=site)
    assert {row["action"] for row in run.drift} == {"overwritten"}
    _drain()
    ga, ga_quota = _item(pretix, "spring-gala:ga")
    assert (ga["name"], ga["default_price"], ga_quota["size"]) == ({"en": "General Admission"}, "25.00", 200)
    assert _event(pretix, "spring-gala")["location"] == {"en": "Teatro Nacional"}
    assert reconcile_site(site=site).drift == []
    assert ExternalLink.objects.exclude(drift={}).count() == 0


def test_two_workers_creating_one_event_at_once_make_one_event(
    seeded: tuple[WixSite, ExternalSystem],
    pretix: Pretix,  # noqa: F811
) -> None:
    """pretix answers the loser 400 or, inside its own race window, 500 (an IntegrityError):
    both are read as "made a moment ago" and the event is adopted, without a retry."""
    import threading

    from sync.clients.base import CallList, RecordedHttp
    from sync.services.adapters.pretix import PretixAdapter

    _, system = seeded

    PretixAdapter(system).client._meta_declare(RecordedHttp(CallList(), timeout=30), "create")
    statuses: list[int | None] = []
    for attempt in range(6):
        wix_id = f"race-{attempt}"
        payload = {
            "name": {"en": f"Race {attempt}"},
            "slug": f"race-{attempt}",
            "date_from": "2027-01-01T20:00:00Z",
            "meta_data": {"wix_event_id": wix_id},
        }
        barrier = threading.Barrier(2)
        results: list[str | BaseException] = []
        keeps = [CallList(), CallList()]

        def create(keep: CallList, payload: dict[str, Any], barrier: Any, results: list[Any]) -> None:
            adapter = PretixAdapter(system)
            adapter.client._meta_declared = True
            barrier.wait()
            try:
                results.append(
                    adapter.create(
                        RecordedHttp(keep, timeout=30),
                        entity_type="event",
                        payload=payload,
                        idempotency_key="k",
                        context=PushContext(facts={"create_only": {"currency": "EUR"}}),
                    )
                )
            except BaseException as exc:
                results.append(exc)

        threads = [threading.Thread(target=create, args=(keep, payload, barrier, results)) for keep in keeps]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert results == [f"race-{attempt}", f"race-{attempt}"], results
        assert len(pretix.results(f"events/?attr[wix_event_id]={wix_id}")) == 1
        statuses += [
            r.http_status for k in keeps for r in k.records if r.action == "create" and "POST" in r.request
        ]
    assert 201 in statuses
    print("pretix's answers to the racing creates:", sorted(statuses, key=str))
